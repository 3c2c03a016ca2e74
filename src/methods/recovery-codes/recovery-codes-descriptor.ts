/** How recovery codes describe themselves to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const recoveryCodesDescriptor = {
  type: 'recovery-codes',
  name: 'Recovery codes',
  noun: 'recovery code',
  // The last resort: never offered before anything else.
  strength: 10,
  signin: { prompt: 'Enter one of your recovery codes. Each code works once.', input: 'text', codeLabel: 'Recovery code', maxLength: 32 },
  amr: ['otp'],
  outOfBand: false,
  phishingResistant: false,
  enrolment: { form: 'generate' },
  provesPossessionAtSetup: false,
} as const satisfies MethodDescriptor;
