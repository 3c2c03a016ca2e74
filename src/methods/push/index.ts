/** Push approval with number matching (the Steadfast Authenticator) as the registry lists it. */
import type { MethodModule } from '../method-module.ts';
import { pushDescriptor } from './push-descriptor.ts';
import { createPushMethod, type PushDeps } from './push-method.ts';

export const push = { descriptor: pushDescriptor, create: createPushMethod } satisfies MethodModule<PushDeps>;
