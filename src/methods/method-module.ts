import type { Method } from './method.ts';
import type { MethodDescriptor } from './method-descriptor.ts';

/**
 * A method as the registry lists it: what it says about itself, and how to
 * build it from its dependencies (absent for a method the sign-in checks
 * itself, such as a Temporary Access Pass).
 */
export interface MethodModule<Deps = never> {
  readonly descriptor: MethodDescriptor;
  readonly create?: (deps: Deps) => Method;
}
