/** How passkeys and security keys describe themselves to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const webauthnDescriptor = {
  type: 'webauthn',
  name: 'Passkey or security key',
  noun: 'passkey or security key',
  strength: 90,
  signin: { prompt: 'Use your passkey or security key.', input: 'webauthn', anyCredential: true, retry: 'That key was not accepted.' },
  // A synced passkey is a software-protected key, a device-bound one hardware; `user` when it verified the person.
  amr: ['hwk', 'swk', 'user'],
  outOfBand: false,
  phishingResistant: true,
  enrolment: { form: 'webauthn' },
  provesPossessionAtSetup: true,
} as const satisfies MethodDescriptor;
