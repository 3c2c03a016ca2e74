import type { Method } from './method.ts';
import { createTotpMethod, type TotpDeps } from './totp/totp-method.ts';
import { createRecoveryCodesMethod, type RecoveryCodesDeps } from './recovery-codes/recovery-codes-method.ts';
import { createWebAuthnMethod, type WebAuthnDeps, type WebAuthnMethod } from './webauthn/webauthn-method.ts';

export type MethodDeps = TotpDeps & RecoveryCodesDeps & WebAuthnDeps;

export class MethodRegistry {
  private readonly byType = new Map<string, Method>();

  constructor(methods: Method[]) {
    for (const method of methods) this.byType.set(method.type, method);
  }

  get(type: string): Method | undefined {
    return this.byType.get(type);
  }

  get types(): string[] {
    return [...this.byType.keys()];
  }

  /** WebAuthn has a step no other method has: registration options. */
  get webauthn(): WebAuthnMethod {
    return this.byType.get('webauthn') as WebAuthnMethod;
  }
}

/** The one place methods are registered: adding a method is one line here. */
export function createMethodRegistry(deps: MethodDeps): MethodRegistry {
  return new MethodRegistry([createTotpMethod(deps), createRecoveryCodesMethod(deps), createWebAuthnMethod(deps)]);
}
