/**
 * A sign-in in progress, kept in the ephemeral store so any node can carry it
 * on. It exists only between a correct password and the second factor.
 */
export interface Flow {
  id: string;
  tenantId: string;
  userId: string;
  username: string;
  state: 'factor_required';
  /** Factors proved so far (RFC 8176 values). */
  amr: string[];
  createdAt: number;
  expiresAt: number;
}

export const FLOW_LIFETIME_MS = 10 * 60_000;
export const FLOW_MAX_ATTEMPTS = 5;

export const flowKey = (id: string) => `flow:${id}`;
export const flowFailuresKey = (id: string) => `flow:${id}:fails`;
