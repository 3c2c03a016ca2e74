/** The text-message method as the registry lists it. */
import type { MethodModule } from '../method-module.ts';
import { createOutOfBandMethod, type OutOfBandDeps } from '../out-of-band/out-of-band-method.ts';
import { smsDescriptor } from './sms-descriptor.ts';

export const sms = { descriptor: smsDescriptor, create: (deps: OutOfBandDeps) => createOutOfBandMethod('sms', deps) } satisfies MethodModule<OutOfBandDeps>;
