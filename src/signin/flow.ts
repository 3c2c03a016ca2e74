import { Type, type Static } from 'typebox';

/**
 * A sign-in in progress, kept in the ephemeral store so any node can carry it
 * on. It exists between a correct password and the second factor, between the
 * start and the end of a passkey sign-in, or, for an app that checked the
 * password itself, between its request and the second factor.
 *
 * The schema is checked on every read (`parseRecord`): a flow written by
 * another release during a rolling upgrade, or a damaged one, reads as absent
 * and the user starts again, rather than being trusted by a cast.
 */
export const FLOW_RECORD_VERSION = 1;
export const FlowRecord = Type.Object({
  /**
   * The record's version. A release that changes what a field means (not only
   * its shape) bumps it, so nodes of the older release read the new flows as
   * unknown during a rolling upgrade instead of misreading them.
   */
  v: Type.Literal(FLOW_RECORD_VERSION),
  id: Type.String(),
  /**
   * After a password, a second factor; a passwordless passkey sign-in (user
   * known only at the end); or an app transaction (the REST app API), which
   * proves a second factor to that app and can never become a session.
   */
  kind: Type.Union([Type.Literal('second-factor'), Type.Literal('passkey'), Type.Literal('app-transaction')]),
  tenantId: Type.String(),
  /** Empty for a passkey flow until the passkey names its user. */
  userId: Type.String(),
  username: Type.String(),
  /** Factors proved so far (RFC 8176 values): `pwd` only when Steadfast checked the password itself. */
  amr: Type.Array(Type.String()),
  /** A break-glass account: its sign-in raises an alert (carried here so finishing needs no lookup). */
  breakGlass: Type.Optional(Type.Boolean()),
  /** App transactions only: the app that opened it, the only one that may read or finish it. */
  appId: Type.Optional(Type.String()),
  /** The user's known-browser marks issued before this are void (as of the password step). */
  knownBrowsersResetAt: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
  createdAt: Type.Number(),
  expiresAt: Type.Number(),
});
export type Flow = Static<typeof FlowRecord>;

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
