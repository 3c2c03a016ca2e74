/**
 * A sign-in in progress, kept in the ephemeral store so any node can carry it
 * on. It exists between a correct password and the second factor, or between
 * the start and the end of a passkey sign-in.
 */
export interface Flow {
  id: string;
  /** After a password, a second factor; or a passwordless passkey sign-in (user known only at the end). */
  kind: 'second-factor' | 'passkey';
  tenantId: string;
  /** Empty for a passkey flow until the passkey names its user. */
  userId: string;
  username: string;
  /** Factors proved so far (RFC 8176 values). */
  amr: string[];
  /** A break-glass account: its sign-in raises an alert (carried here so finishing needs no lookup). */
  breakGlass?: boolean;
  createdAt: number;
  expiresAt: number;
}

export const FLOW_LIFETIME_MS = 10 * 60_000;
export const FLOW_MAX_ATTEMPTS = 5;

export const flowKey = (id: string) => `flow:${id}`;
export const flowFailuresKey = (id: string) => `flow:${id}:fails`;
