import type { Tenant } from '../directory/tenant.ts';
import type { Credential } from '../methods/credentials.ts';
import { methodStrength, type MethodRegistry } from '../methods/registry.ts';

export interface MethodChoice {
  id: string;
  type: string;
  label: string;
  available: boolean;
  default: boolean;
}

/**
 * The second-factor choices a user is offered, in the order they are offered:
 * the default if it can be used now, then every other usable method strongest
 * first, then those that cannot be used now (a delivery channel with no working
 * provider, or a type the tenant's policy no longer allows), so the first
 * choice always works when any does.
 *
 * A method of a type the policy has stopped allowing is still the user's: it is
 * listed, as one that cannot be used, so a user left with only such methods has
 * no usable method (the tenant's fail mode: a pass), never none at all, which
 * would let the password alone register or, where MFA is optional, sign in
 * (twenty-fifth round). It is never verified: the sign-in checks the policy
 * when it resolves the method (SigninService.resolveCredentials).
 */
export function methodChoices(tenant: Tenant, active: Credential[], registry: MethodRegistry): MethodChoice[] {
  return active
    .filter((c) => registry.get(c.type))
    .map((c) => ({
      id: c.id,
      type: c.type,
      label: c.label,
      available: tenant.policy.allowedMethods.includes(c.type) && registry.available(c.type),
      default: c.isDefault,
    }))
    .sort(
      (a, b) =>
        Number(b.available) - Number(a.available) ||
        Number(b.default) - Number(a.default) ||
        // Strongest first after the user's default; recovery codes always last (their descriptor's strength).
        methodStrength(b.type) - methodStrength(a.type),
    );
}
