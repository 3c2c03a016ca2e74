import type { MethodModule } from '../method-module.ts';
import { webauthnDescriptor } from './webauthn-descriptor.ts';
import { createWebAuthnMethod, type WebAuthnDeps } from './webauthn-method.ts';

export const webauthn = { descriptor: webauthnDescriptor, create: createWebAuthnMethod } satisfies MethodModule<WebAuthnDeps>;
