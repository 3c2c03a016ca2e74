/** How the voice-call method describes itself to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const voiceDescriptor = {
  type: 'voice',
  name: 'Phone call',
  noun: 'phone call',
  strength: 45,
  signin: { prompt: 'Enter the code we read out to you.', input: 'numeric', codeLabel: 'Phone call code', maxLength: 8 },
  amr: ['tel'],
  outOfBand: true,
  phishingResistant: false,
  enrolment: { form: 'phone' },
  provesPossessionAtSetup: true,
} as const satisfies MethodDescriptor;
