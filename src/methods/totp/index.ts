/** The authenticator-app method as the registry lists it. */
import type { MethodModule } from '../method-module.ts';
import { totpDescriptor } from './totp-descriptor.ts';
import { createTotpMethod, type TotpDeps } from './totp-method.ts';

export const totp = { descriptor: totpDescriptor, create: createTotpMethod } satisfies MethodModule<TotpDeps>;
