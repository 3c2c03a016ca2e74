/** The voice-call method as the registry lists it. */
import type { MethodModule } from '../method-module.ts';
import { createOutOfBandMethod, type OutOfBandDeps } from '../out-of-band/out-of-band-method.ts';
import { voiceDescriptor } from './voice-descriptor.ts';

export const voice = {
  descriptor: voiceDescriptor,
  create: (deps: OutOfBandDeps) => createOutOfBandMethod('voice', deps),
} satisfies MethodModule<OutOfBandDeps>;
