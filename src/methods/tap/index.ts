import type { MethodModule } from '../method-module.ts';
import { tapDescriptor } from './tap-descriptor.ts';

/** Checked by the sign-in itself against the user's pass (access-passes.ts): no credential, no `Method`. */
export const tap = { descriptor: tapDescriptor } satisfies MethodModule;
