/** How push approval describes itself to pages, policy and API. */
import type { MethodDescriptor } from '../method-descriptor.ts';

export const pushDescriptor = {
  type: 'push',
  name: 'Steadfast Authenticator',
  noun: 'approval in the Steadfast Authenticator',
  // Number matching and a device-bound key beat a typed code, but a phishing page can still relay the number.
  strength: 75,
  signin: {
    prompt: 'Open the Steadfast Authenticator on your phone, enter the number below and approve.',
    input: 'approval',
    anyCredential: true,
    retry: 'The request was denied or has expired.',
  },
  // RFC 8176 `swk`: proof of possession of a software-secured key (a non-extractable WebCrypto key).
  amr: ['swk'],
  outOfBand: false,
  phishingResistant: false,
  enrolment: { form: 'pair' },
  // Pairing proves only that someone with the pairing link made a key, not that the user holds it.
  provesPossessionAtSetup: false,
} as const satisfies MethodDescriptor;
