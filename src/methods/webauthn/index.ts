/** Passkeys and security keys as the registry lists them. */
import type { MethodModule } from '../method-module.ts';
import { webauthnDescriptor } from './webauthn-descriptor.ts';
import { createWebAuthnMethod, type WebAuthnDeps } from './webauthn-method.ts';

export const webauthn = { descriptor: webauthnDescriptor, create: createWebAuthnMethod } satisfies MethodModule<WebAuthnDeps>;
