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
 * provider), so the first choice always works when any does.
 */
export function methodChoices(tenant: Tenant, active: Credential[], registry: MethodRegistry): MethodChoice[] {
  return active
    .filter((c) => registry.get(c.type) && tenant.policy.allowedMethods.includes(c.type))
    .map((c) => ({ id: c.id, type: c.type, label: c.label, available: registry.available(c.type), default: c.isDefault }))
    .sort(
      (a, b) =>
        Number(b.available) - Number(a.available) ||
        Number(b.default) - Number(a.default) ||
        // Strongest first after the user's default; recovery codes always last (their descriptor's strength).
        methodStrength(b.type) - methodStrength(a.type),
    );
}
