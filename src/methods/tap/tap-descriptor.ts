import type { MethodDescriptor } from '../method-descriptor.ts';

/** A Temporary Access Pass: the administrator's, not the user's; it stands in for a method a user lost. */
export const tapDescriptor = {
  type: 'tap',
  name: 'Temporary Access Pass',
  noun: 'Temporary Access Pass',
  strength: 20,
  signin: { prompt: 'Enter the Temporary Access Pass your administrator gave you.', input: 'text', codeLabel: 'Temporary Access Pass', maxLength: 32 },
  amr: ['tap'],
  outOfBand: false,
  phishingResistant: false,
  enrolment: null,
  provesPossessionAtSetup: false,
} as const satisfies MethodDescriptor;
