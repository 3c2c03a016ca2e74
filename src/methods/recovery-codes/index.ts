/** Recovery codes as the registry lists them. */
import type { MethodModule } from '../method-module.ts';
import { recoveryCodesDescriptor } from './recovery-codes-descriptor.ts';
import { createRecoveryCodesMethod, type RecoveryCodesDeps } from './recovery-codes-method.ts';

export const recoveryCodes = { descriptor: recoveryCodesDescriptor, create: createRecoveryCodesMethod } satisfies MethodModule<RecoveryCodesDeps>;
