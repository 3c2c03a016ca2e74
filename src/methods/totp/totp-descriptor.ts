/** How the authenticator-app method describes itself to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const totpDescriptor = {
  type: 'totp',
  name: 'Authenticator app',
  noun: 'authenticator app',
  strength: 70,
  signin: { prompt: 'Enter the 6-digit code from your authenticator app.', input: 'numeric', codeLabel: 'Authenticator app code', maxLength: 6 },
  amr: ['otp'],
  outOfBand: false,
  phishingResistant: false,
  enrolment: { form: 'totp' },
  provesPossessionAtSetup: true,
} as const satisfies MethodDescriptor;
