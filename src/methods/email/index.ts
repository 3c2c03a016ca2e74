/** The email-code method as the registry lists it. */
import type { MethodModule } from '../method-module.ts';
import { createOutOfBandMethod, type OutOfBandDeps } from '../out-of-band/out-of-band-method.ts';
import { emailDescriptor } from './email-descriptor.ts';

export const email = {
  descriptor: emailDescriptor,
  create: (deps: OutOfBandDeps) => createOutOfBandMethod('email', deps),
} satisfies MethodModule<OutOfBandDeps>;
