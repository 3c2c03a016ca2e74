/** How the text-message method describes itself to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const smsDescriptor = {
  type: 'sms',
  name: 'Text message',
  noun: 'text message',
  strength: 50,
  signin: { prompt: 'Enter the code from the text message.', input: 'numeric', codeLabel: 'Text message code', maxLength: 8 },
  amr: ['sms'],
  outOfBand: true,
  phishingResistant: false,
  enrolment: { form: 'phone' },
  provesPossessionAtSetup: true,
} as const satisfies MethodDescriptor;
