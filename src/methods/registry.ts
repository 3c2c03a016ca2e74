import type { Method } from './method.ts';
import { createTotpMethod, type TotpDeps } from './totp/totp-method.ts';
import { createRecoveryCodesMethod, type RecoveryCodesDeps } from './recovery-codes/recovery-codes-method.ts';
import { createWebAuthnMethod, type WebAuthnDeps, type WebAuthnMethod } from './webauthn/webauthn-method.ts';
import { createOutOfBandMethod, type OutOfBandDeps, type OutOfBandMethod } from './out-of-band/out-of-band-method.ts';

export type MethodDeps = TotpDeps & RecoveryCodesDeps & WebAuthnDeps & OutOfBandDeps;

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

  /** SMS, voice and email: the methods whose codes travel through a delivery channel. */
  outOfBand(type: string): OutOfBandMethod | undefined {
    const method = this.byType.get(type) as Partial<OutOfBandMethod> | undefined;
    return method?.channel ? (method as OutOfBandMethod) : undefined;
  }
}

/** The one place methods are registered: adding a method is one line here. */
export function createMethodRegistry(deps: MethodDeps): MethodRegistry {
  return new MethodRegistry([
    createTotpMethod(deps),
    createRecoveryCodesMethod(deps),
    createWebAuthnMethod(deps),
    createOutOfBandMethod('sms', deps),
    createOutOfBandMethod('voice', deps),
    createOutOfBandMethod('email', deps),
  ]);
}
