/** How the email-code method describes itself to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const emailDescriptor = {
  type: 'email',
  name: 'Email',
  noun: 'email code',
  strength: 40,
  signin: { prompt: 'Enter the code from the email.', input: 'numeric', codeLabel: 'Email code', maxLength: 8 },
  // RFC 8176 has no value for email; it is a one-time password.
  amr: ['otp'],
  outOfBand: true,
  phishingResistant: false,
  enrolment: { form: 'email' },
  provesPossessionAtSetup: true,
} as const satisfies MethodDescriptor;
