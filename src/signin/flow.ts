/**
 * A sign-in in progress, kept in the ephemeral store so any node can carry it
 * on. It exists between a correct password and the second factor, between the
 * start and the end of a passkey sign-in, or, for an app that checked the
 * password itself, between its request and the second factor.
 */
export interface Flow {
  id: string;
  /**
   * After a password, a second factor; a passwordless passkey sign-in (user
   * known only at the end); or an app transaction (the REST app API), which
   * proves a second factor to that app and can never become a session.
   */
  kind: 'second-factor' | 'passkey' | 'app-transaction';
  tenantId: string;
  /** Empty for a passkey flow until the passkey names its user. */
  userId: string;
  username: string;
  /** Factors proved so far (RFC 8176 values): `pwd` only when Steadfast checked the password itself. */
  amr: string[];
  /** A break-glass account: its sign-in raises an alert (carried here so finishing needs no lookup). */
  breakGlass?: boolean;
  /** App transactions only: the app that opened it, the only one that may read or finish it. */
  appId?: string;
  /** The user's known-browser marks issued before this are void (as of the password step). */
  knownBrowsersResetAt?: number | null;
  createdAt: number;
  expiresAt: number;
}

/**
 * Which flow a request names: a browser's sign-in (`{id}`) or an app's
 * transaction (`{id, appId}`). The two live in separate keyspaces, so an app
 * transaction id is unknown to the sign-in endpoints and the other way round.
 */
export interface FlowRef {
  id: string;
  appId?: string | undefined;
}

export const FLOW_LIFETIME_MS = 10 * 60_000;
export const FLOW_MAX_ATTEMPTS = 5;

export const flowKey = (ref: FlowRef) => (ref.appId === undefined ? `flow:${ref.id}` : `apptx:${ref.id}`);
export const flowFailuresKey = (ref: FlowRef) => `${flowKey(ref)}:fails`;
