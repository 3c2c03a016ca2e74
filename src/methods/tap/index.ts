/** Temporary Access Passes as the registry lists them (checked by the sign-in itself, not by a `Method`). */
import type { MethodModule } from '../method-module.ts';
import { tapDescriptor } from './tap-descriptor.ts';

/** Checked by the sign-in itself against the user's pass (access-passes.ts): no credential, no `Method`. */
export const tap = { descriptor: tapDescriptor } satisfies MethodModule;
