/** Browser and API sessions: opaque random tokens stored as SHA-256 hashes, scoped full or registration-only. */
import type { Db } from '../store/durable/database.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { hashToken } from '../crypto/keyed-hash.ts';
import { newId, randomToken } from '../crypto/random.ts';
import type { GroupCommit } from '../store/durable/group-commit.ts';
import type { SessionTable } from '../store/durable/schema.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { REGISTRATION_TOKEN_PREFIX, SESSION_TOKEN_PREFIX } from './registration-token.ts';
import { parseJson, parseRecord } from '../store/parse-record.ts';
import { Type } from 'typebox';

export type SessionScope = 'full' | 'register';

export interface Session {
  id: string;
  tenantId: string;
  userId: string;
  scope: SessionScope;
  amr: string[];
  /** When the user last proved who they are (for "sign in again to change methods"). */
  authTime: number;
  expiresAt: number;
}

export interface ActiveSession {
  id: string;
  scope: SessionScope;
  amr: string[];
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  ip: string | null;
  userAgent: string | null;
}

export interface SessionOptions {
  lifetimeMs: number;
  idleMs: number;
}

export interface NewSession {
  tenantId: string;
  userId: string;
  scope: SessionScope;
  amr: string[];
  ip?: string | undefined;
  userAgent?: string | undefined;
}

const PREFIX = SESSION_TOKEN_PREFIX;
/** The `amr` column: the factors (RFC 8176) the session proved. */
const AmrColumn = Type.Array(Type.String());
const sharedKey = (tokenHash: string) => `outage-session:${tokenHash}`;
/** A session row another node shared through Redis during an outage: parsed, never trusted by a cast. */
const SharedSessionRow = Type.Object({
  id: Type.String(),
  created_at: Type.Number(),
  tenant_id: Type.String(),
  user_id: Type.String(),
  token_hash: Type.String(),
  scope: Type.Union([Type.Literal('full'), Type.Literal('register')]),
  amr: Type.String(),
  auth_time: Type.Number(),
  expires_at: Type.Number(),
  last_seen_at: Type.Number(),
  revoked_at: Type.Union([Type.Number(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
});
const revokedKey = (sessionId: string) => `outage-revoked:${sessionId}`;
/** Changes to one's methods, or an administrator's changes, need a sign-in this recent. */
export const RECENT_SIGNIN_MS = 10 * 60_000;
// Refresh last-seen at most this often, so a busy session is not a write per request; more often under an idle
// time of two minutes or less (half of it), or a session in use would idle out between two notes of its use.
const TOUCH_EVERY_MS = 60_000;
// A restricted session only lets the user register a method; it need not live long.
const REGISTER_SCOPE_LIFETIME_MS = 30 * 60_000;

/**
 * Browser and API sessions: opaque random tokens, stored as SHA-256 hashes.
 * Kept in the durable store (not the ephemeral one) so restarting a
 * single-node install does not sign everybody out, and so "end my other
 * sessions" can find every session of a user.
 */
export class Sessions {
  private readonly allEndedListeners: ((tenantId: string, userId: string) => Promise<unknown>)[] = [];
  private readonly afterAllEndedListeners: ((tenantId: string, userId: string) => Promise<unknown>)[] = [];

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly options: SessionOptions,
    private readonly groupCommit: GroupCommit,
    /**
     * While signing in from the outage fallback: sessions issued and revoked
     * here are also told to the ephemeral store (Redis, shared), so every node
     * honours the one and refuses the other before the database is back.
     */
    private readonly outage?: { active(): boolean; store: EphemeralStore },
  ) {}

  async create(input: NewSession): Promise<{ token: string; session: Session }> {
    const now = this.clock.now();
    // Marked when registration-scoped, for admission control's ranking only.
    const token = (input.scope === 'register' ? REGISTRATION_TOKEN_PREFIX : PREFIX) + randomToken(32);
    const lifetime = input.scope === 'register' ? Math.min(REGISTER_SCOPE_LIFETIME_MS, this.options.lifetimeMs) : this.options.lifetimeMs;
    const session: Session = {
      id: newId(),
      tenantId: input.tenantId,
      userId: input.userId,
      scope: input.scope,
      amr: input.amr,
      authTime: now,
      expiresAt: now + lifetime,
    };
    const row: SessionTable = {
      id: session.id,
      tenant_id: session.tenantId,
      user_id: session.userId,
      token_hash: hashToken(token),
      scope: session.scope,
      amr: JSON.stringify(session.amr),
      auth_time: now,
      created_at: now,
      expires_at: session.expiresAt,
      last_seen_at: now,
      revoked_at: null,
      ip: input.ip?.slice(0, 64) ?? null,
      user_agent: input.userAgent?.slice(0, 512) ?? null,
    };
    await this.groupCommit.insert('sessions', row);
    if (this.outage?.active()) await this.outage.store.set(sharedKey(row.token_hash), row, lifetime);
    return { token, session };
  }

  /** The live session for a token, or undefined when unknown, revoked, expired or idle too long. */
  async authenticate(token: string): Promise<Session | undefined> {
    if (!token.startsWith(PREFIX) || token.length > 100) return undefined;
    const tokenHash = hashToken(token);
    let row = await this.db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    if (this.outage?.active()) {
      // Issued on another node during the outage (not in this node's snapshot), or revoked on one.
      if (!row) {
        row = parseRecord(SharedSessionRow, await this.outage.store.get(sharedKey(tokenHash)));
        // Adopted into this node's copy (and so its journal): a revocation here then has a row to end, and
        // replays after the insert whichever node's journal reaches the database first.
        if (row)
          await this.db
            .insertInto('sessions')
            .values(row)
            .onConflict((oc) => oc.column('id').doNothing())
            .execute();
      }
      if (row && (await this.outage.store.get(revokedKey(row.id))) !== undefined) return undefined;
    }
    if (!row || row.revoked_at !== null) return undefined;
    // A session whose factors cannot be read proves nothing.
    const amr = parseJson(AmrColumn, row.amr);
    if (!amr) return undefined;
    const now = this.clock.now();
    if (now >= row.expires_at || now - row.last_seen_at >= this.options.idleMs) return undefined;
    if (now - row.last_seen_at >= Math.min(TOUCH_EVERY_MS, this.options.idleMs / 2)) {
      await this.db.updateTable('sessions').set({ last_seen_at: now }).where('tenant_id', '=', row.tenant_id).where('id', '=', row.id).execute();
    }
    return {
      id: row.id,
      tenantId: row.tenant_id,
      userId: row.user_id,
      scope: row.scope,
      amr,
      authTime: row.auth_time,
      expiresAt: row.expires_at,
    };
  }

  /**
   * The session with this id if it is still live (not revoked, expired or idle too long), without touching
   * it: for what was issued on its strength and is used later without its token (an app's authorization code).
   * A session another node issued from the outage fallback is known here by its token only, so it does not
   * pass (the app's user signs in again).
   */
  async findLive(tenantId: string, sessionId: string): Promise<{ userId: string; scope: SessionScope } | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .select(['user_id', 'scope', 'revoked_at', 'expires_at', 'last_seen_at'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', sessionId)
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) return undefined;
    if (this.outage?.active() && (await this.outage.store.get(revokedKey(sessionId))) !== undefined) return undefined;
    const now = this.clock.now();
    if (now >= Number(row.expires_at) || now - Number(row.last_seen_at) >= this.options.idleMs) return undefined;
    return { userId: row.user_id, scope: row.scope };
  }

  /** A restricted session becomes a full one once the user has registered a method and proved it. */
  async upgrade(session: Session, amr: string[]): Promise<void> {
    const now = this.clock.now();
    await this.db
      .updateTable('sessions')
      .set({ scope: 'full', amr: JSON.stringify(amr), auth_time: now, expires_at: now + this.options.lifetimeMs })
      .where('tenant_id', '=', session.tenantId)
      .where('id', '=', session.id)
      .execute();
  }

  /** Ends the user's registration sessions but `keepId` (the user has a way to sign in now). */
  async endRegistrationSessions(tenantId: string, userId: string, keepId: string): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('scope', '=', 'register')
      .where('id', '!=', keepId)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async revoke(session: Pick<Session, 'id' | 'tenantId'>): Promise<void> {
    if (this.outage?.active()) await this.outage.store.set(revokedKey(session.id), 1, this.options.lifetimeMs);
    await this.db
      .updateTable('sessions')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', session.tenantId)
      .where('id', '=', session.id)
      .where('revoked_at', 'is', null)
      .execute();
  }

  /** Whether the session proved its user recently. A registration session exists only to register, briefly, and counts as recent. */
  isRecent(session: Session): boolean {
    return session.scope === 'register' || this.clock.now() - session.authTime <= RECENT_SIGNIN_MS;
  }

  /** Throws `reauthentication-required` unless the session proved its user recently. */
  requireRecent(session: Session, why?: string): void {
    if (!this.isRecent(session)) throw new AppError('reauthentication-required', why);
  }

  /** A user's sessions that can still be used, newest first, for the admin. */
  async listActive(tenantId: string, userId: string): Promise<ActiveSession[]> {
    const now = this.clock.now();
    const rows = await this.db
      .selectFrom('sessions')
      .select(['id', 'scope', 'amr', 'created_at', 'last_seen_at', 'expires_at', 'ip', 'user_agent'])
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .where('last_seen_at', '>', now - this.options.idleMs)
      .orderBy('created_at', 'desc')
      .limit(100)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      scope: r.scope,
      amr: parseJson(AmrColumn, r.amr) ?? [],
      createdAt: Number(r.created_at),
      lastSeenAt: Number(r.last_seen_at),
      expiresAt: Number(r.expires_at),
      ip: r.ip,
      userAgent: r.user_agent,
    }));
  }

  /**
   * Also run whenever a user's sessions all end: what other parts issued on
   * the strength of a session (the OpenID Connect provider's sessions, grants
   * and refresh tokens) ends with them. Run just before the sessions end
   * (see `revokeAllForUser`).
   */
  onAllEnded(listener: (tenantId: string, userId: string) => Promise<unknown>): void {
    this.allEndedListeners.push(listener);
  }

  /**
   * Run once the sessions have ended, for what a session could still make while the `onAllEnded` listeners ran
   * (an app's grant, saved by a request that found the session live then).
   */
  afterAllEnded(listener: (tenantId: string, userId: string) => Promise<unknown>): void {
    this.afterAllEndedListeners.push(listener);
  }

  /**
   * Ends every session of the user except `keepId`, forgets their remembered
   * browsers and ends what was issued on the strength of a session (the
   * listeners); returns how many sessions ended.
   */
  async revokeAllForUser(tenantId: string, userId: string, keepId?: string): Promise<number> {
    // The listeners first: among them the sign-in's mark of when the user's sessions ended, which a sign-in
    // finishing meanwhile reads after writing its session (SigninService.issueSession). Set before the
    // sessions end, a session written after they did always finds it. (A set-up a session begins meanwhile
    // cannot finish once the session has ended: Credentials.activate checks.)
    for (const listener of this.allEndedListeners) await listener(tenantId, userId);
    let query = this.db
      .updateTable('sessions')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (keepId) query = query.where('id', '!=', keepId);
    const result = await query.executeTakeFirst();
    for (const listener of this.afterAllEndedListeners) await listener(tenantId, userId);
    // Whatever ends a user's other sessions also forgets their remembered browsers.
    await this.db
      .updateTable('remembered_devices')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
    return Number(result.numUpdatedRows);
  }
}
