/** The registry of methods: the one list every page, the policy and the API derive from. */
import type { Method } from './method.ts';
import type { MethodDescriptor } from './method-descriptor.ts';
import type { TotpDeps } from './totp/totp-method.ts';
import type { RecoveryCodesDeps } from './recovery-codes/recovery-codes-method.ts';
import type { WebAuthnDeps, WebAuthnMethod } from './webauthn/webauthn-method.ts';
import type { OutOfBandDeps, OutOfBandMethod } from './out-of-band/out-of-band-method.ts';
import { webauthn } from './webauthn/index.ts';
import { totp } from './totp/index.ts';
import { sms } from './sms/index.ts';
import { voice } from './voice/index.ts';
import { email } from './email/index.ts';
import { tap } from './tap/index.ts';
import { recoveryCodes } from './recovery-codes/index.ts';
import { push } from './push/index.ts';
import type { PushDeps, PushMethod } from './push/push-method.ts';

/**
 * The one place methods are registered: adding a method is a folder (its
 * descriptor and implementation) and one line here. Everything else (the
 * policy's method types, the order methods are offered in, what every page
 * calls them and how it asks for them) derives from this list.
 */
export const METHOD_MODULES = [webauthn, push, totp, sms, voice, email, tap, recoveryCodes] as const;

export type MethodType = (typeof METHOD_MODULES)[number]['descriptor']['type'];

export const METHOD_TYPES: readonly MethodType[] = METHOD_MODULES.map((m) => m.descriptor.type);

const DESCRIPTORS = new Map<string, MethodDescriptor>(METHOD_MODULES.map((m) => [m.descriptor.type, m.descriptor]));

/** A method's descriptor; undefined for a type this server does not know. */
export function describeMethod(type: string): MethodDescriptor | undefined {
  return DESCRIPTORS.get(type);
}

/** What pages call a method type; the type itself for one this server does not know (an old event). */
export const methodName = (type: string): string => DESCRIPTORS.get(type)?.name ?? type;

/** Sort key: stronger methods first. */
export const methodStrength = (type: string): number => DESCRIPTORS.get(type)?.strength ?? 0;

export type MethodDeps = TotpDeps & RecoveryCodesDeps & WebAuthnDeps & OutOfBandDeps & PushDeps;

export class MethodRegistry {
  private readonly byType = new Map<string, Method>();

  constructor(methods: Method[]) {
    for (const method of methods) this.byType.set(method.type, method);
  }

  get(type: string): Method | undefined {
    return this.byType.get(type);
  }

  /** Whether a method of this type can be challenged now; false for unknown types. */
  available(type: string): boolean {
    const method = this.byType.get(type);
    return method !== undefined && (method.available?.() ?? true);
  }

  get types(): string[] {
    return [...this.byType.keys()];
  }

  /** WebAuthn has a step no other method has: registration options. */
  get webauthn(): WebAuthnMethod {
    return this.byType.get('webauthn') as WebAuthnMethod;
  }

  /** The Steadfast Authenticator: pairing, and the device's reads and answers (absent when not registered). */
  get push(): PushMethod | undefined {
    return this.byType.get('push') as PushMethod | undefined;
  }

  /** SMS, voice and email: the methods whose codes travel through a delivery channel. */
  outOfBand(type: string): OutOfBandMethod | undefined {
    return describeMethod(type)?.outOfBand ? (this.byType.get(type) as OutOfBandMethod | undefined) : undefined;
  }
}

/** Builds every registered method that has an implementation of its own. */
export function createMethodRegistry(deps: MethodDeps): MethodRegistry {
  const built: Method[] = [];
  for (const module of METHOD_MODULES) if ('create' in module) built.push(module.create(deps));
  return new MethodRegistry(built);
}
