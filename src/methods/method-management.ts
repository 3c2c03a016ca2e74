/** Self-service on one's own methods: add, confirm, rename, make default, remove, within policy and scope. */
import type { Clock } from '../clock.ts';
import type { AuditLog } from '../activity/audit-log.ts';
import type { Db } from '../store/durable/database.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { User } from '../directory/users.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import { AppError } from '../errors/app-error.ts';
import type { Credentials, Credential } from './credentials.ts';
import { METHOD_MODULES, type MethodRegistry, type MethodType } from './registry.ts';
import type { Activation, EnrolInput } from './method.ts';
import type { AuthenticatorKind } from './webauthn/webauthn-method.ts';
import type { SentCode } from './out-of-band/out-of-band-method.ts';
import { remainingRecoveryCodes } from './recovery-codes/recovery-codes-method.ts';
import { requireMayAdd, requireSessionMay, type SessionAction } from '../sessions/session-scope.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

export interface MethodView {
  id: string;
  type: string;
  label: string;
  state: 'pending' | 'active';
  default: boolean;
  createdAt: string;
  lastUsedAt: string | null;
  /** Recovery codes only: how many are left unused. */
  remaining?: number;
  /** SMS, voice and email: the destination, masked. */
  to?: string;
  /** A passkey (discoverable, verifies the user): a way in on its own, with no password. */
  signsInAlone?: boolean;
}

export interface MethodManagementDeps {
  db: Db;
  credentials: Credentials;
  methods: MethodRegistry;
  sessions: Sessions;
  clock: Clock;
  /** Methods added and removed are recorded: a thief's own authenticator must show in the tenant's audit log. */
  audit: Pick<AuditLog, 'append'>;
  /** Counts wrong confirmation codes per set-up (`CONFIRM_ATTEMPTS`). */
  ephemeral: Pick<EphemeralStore, 'increment'>;
}

/**
 * Wrong codes a set-up takes before it is thrown away: an authenticator app's
 * pending set-up accepts three codes at any moment (a step either side), so
 * unlimited tries would guess it within the hour it waits. Phones and email
 * have their own per-code limit besides (one-time-codes.ts).
 */
export const CONFIRM_ATTEMPTS = 5;
const CONFIRM_ATTEMPTS_WINDOW_MS = 24 * 3600_000;

/** A user's own methods: list, register, confirm, rename, make default, remove. */
export class MethodManagement {
  constructor(private readonly deps: MethodManagementDeps) {}

  /**
   * What every change needs: a session whose scope allows it (a registration
   * session may only add and confirm a method), a recent sign-in (a stolen
   * older session cannot add an attacker's method), and, once the user has a
   * method, a second factor proved in this sign-in: a password plus a
   * remembered-browser cookie must not be able to add a permanent factor.
   */
  private async requireMayChange(tenant: Tenant, user: User, session: Session, action: SessionAction): Promise<void> {
    requireSessionMay(session.scope, action);
    this.deps.sessions.requireRecent(session);
    if (session.scope === 'full' && !session.amr.includes('mfa')) {
      const active = await this.deps.credentials.listForUser(tenant.id, user.id, 'active');
      if (active.length > 0) throw new AppError('second-factor-required', 'sign in with one of your methods to change them');
    }
  }

  /**
   * The method types this session may add now, strongest first: allowed by the
   * tenant's policy, addable by people at all, with a way to deliver their codes,
   * and within the session's scope (a registration session: a first method that
   * proves itself).
   */
  addable(tenant: Tenant, session: Pick<Session, 'scope'>): MethodType[] {
    return METHOD_MODULES.map((m) => m.descriptor)
      .filter((d) => d.enrolment !== null && tenant.policy.allowedMethods.includes(d.type))
      .filter((d) => !d.outOfBand || this.deps.methods.outOfBand(d.type)?.configured() === true)
      .filter((d) => session.scope === 'full' || d.provesPossessionAtSetup)
      .sort((a, b) => b.strength - a.strength)
      .map((d) => d.type);
  }

  async list(tenant: Tenant, user: User): Promise<MethodView[]> {
    const credentials = await this.deps.credentials.listForUser(tenant.id, user.id);
    return Promise.all(credentials.map((c) => this.view(c)));
  }

  async webauthnOptions(tenant: Tenant, user: User, session: Session, kind: AuthenticatorKind) {
    await this.requireMayChange(tenant, user, session, 'add-method');
    if (!tenant.policy.allowedMethods.includes('webauthn')) throw new AppError('method-not-permitted');
    return this.deps.methods.webauthn.registrationOptions(tenant, user, kind);
  }

  /** `ip` is where the request came from: methods that send codes count their sends by session and source. */
  async enrol(
    tenant: Tenant,
    user: User,
    session: Session,
    type: string,
    input: EnrolInput,
    ip?: string,
  ): Promise<{ id: string; state: string } & Record<string, unknown>> {
    await this.requireMayChange(tenant, user, session, 'add-method');
    const method = this.deps.methods.get(type);
    if (!method) throw new AppError('invalid-request', `"${type}" is not a method type this server can register`);
    requireMayAdd(session.scope, type);
    if (!tenant.policy.allowedMethods.includes(type)) throw new AppError('method-not-permitted');
    await this.requireNoMethodYet(tenant, user, session);
    const { credential, reveal } = await method.enrol(tenant, user, {
      ...input,
      requester: requesterOf(session, ip),
      activation: activationFor(session),
      bySession: session.id,
    });
    if (credential.state === 'active') {
      await this.recordChange(tenant, user, session, 'method.added', credential);
      // A registration session that has now proved a new factor completes the sign-in.
      if (method.enrolmentProvesPossession) await this.registered(tenant, user, session, 'hwk');
    }
    return { id: credential.id, state: credential.state, ...reveal };
  }

  /** Confirms a pending method with a code. A restricted (registration) session becomes a full one. */
  async confirm(tenant: Tenant, user: User, session: Session, id: string, code: string): Promise<{ id: string; state: 'active' }> {
    await this.requireMayChange(tenant, user, session, 'confirm-method');
    const credential = await this.require(tenant, user, id);
    if (credential.state !== 'pending') throw new AppError('invalid-state', 'this method is already active');
    requireSetupBy(credential, session);
    const method = this.deps.methods.get(credential.type);
    if (!method?.confirm) throw new AppError('invalid-state', 'this method needs no confirmation');
    if (!(await method.confirm(credential, code, activationFor(session)))) {
      const wrong = await this.deps.ephemeral.increment(`confirm-failures:${credential.id}`, CONFIRM_ATTEMPTS_WINDOW_MS);
      if (wrong < CONFIRM_ATTEMPTS) throw new AppError('invalid-code', undefined, { attemptsLeft: CONFIRM_ATTEMPTS - wrong });
      await this.deps.credentials.deletePending(credential);
      throw new AppError('invalid-code', 'too many wrong codes: this set-up is gone; add the method again', { attemptsLeft: 0 });
    }
    await this.recordChange(tenant, user, session, 'method.added', credential);
    await this.registered(tenant, user, session, 'otp');
    return { id, state: 'active' };
  }

  /**
   * A registration session exists for a user with no way to sign in: once the
   * user has one (registered from another session, maybe by the owner), it may
   * add nothing more. Checked again where the method activates, in its
   * transaction; this early answer spares the user a set-up that would fail.
   */
  private async requireNoMethodYet(tenant: Tenant, user: User, session: Session): Promise<void> {
    if (session.scope !== 'register') return;
    const active = await this.deps.credentials.listForUser(tenant.id, user.id, 'active');
    if (active.some((c) => c.type !== 'recovery-codes')) throw new AppError('already-registered');
  }

  /**
   * A method became active. A registration session that proved it becomes a
   * full one, and every other registration session of the user ends: whoever
   * else got one from the password alone cannot finish with a method of theirs.
   */
  private async registered(tenant: Tenant, user: User, session: Session, amr: string): Promise<void> {
    if (session.scope === 'register') await this.deps.sessions.upgrade(session, [...new Set([...session.amr, amr, 'mfa'])]);
    await this.deps.sessions.endRegistrationSessions(tenant.id, user.id, session.id);
  }

  /** A new confirmation code for a pending phone number or email address. */
  async resendConfirmation(tenant: Tenant, user: User, session: Session, id: string, ip?: string): Promise<{ id: string; delivery: SentCode }> {
    await this.requireMayChange(tenant, user, session, 'resend-confirmation');
    const credential = await this.require(tenant, user, id);
    requireSetupBy(credential, session);
    const method = this.deps.methods.outOfBand(credential.type);
    if (!method) throw new AppError('invalid-state', 'only phone numbers and email addresses get codes');
    const sent = await method.resendConfirmation(tenant, credential, requesterOf(session, ip));
    return { id, delivery: sent.delivery };
  }

  async update(
    tenant: Tenant,
    user: User,
    session: Session,
    id: string,
    changes: { label?: string | undefined; default?: boolean | undefined },
  ): Promise<MethodView> {
    // Stryker disable next-line StringLiteral: equivalent (a full session may do anything, a registration session neither this nor '')
    await this.requireMayChange(tenant, user, session, 'change-method');
    const credential = await this.require(tenant, user, id);
    const label = changes.label?.trim();
    if (label !== undefined && (label.length === 0 || label.length > 100)) throw new AppError('invalid-request', 'a label is 1 to 100 characters');
    if (changes.default === true && credential.state !== 'active') throw new AppError('invalid-state', 'only an active method can be the default');
    if (changes.default === false) throw new AppError('invalid-request', 'choose another method as default instead of unsetting this one');
    // Offered first, recovery codes would be spent on every sign-in and leave the user with none when it matters.
    if (changes.default === true && credential.type === 'recovery-codes')
      throw new AppError('invalid-request', 'recovery codes are a last resort and cannot be the default; choose another method');
    await this.deps.credentials.update(credential, { ...(label !== undefined ? { label } : {}), ...(changes.default ? { isDefault: true } : {}) });
    return this.view((await this.deps.credentials.get(tenant.id, user.id, id))!);
  }

  /**
   * Removes a method. While the tenant requires MFA, the last active method
   * stays, and recovery codes do not count as one: a handful of single-use
   * codes is a way back in after losing a device, not a way to sign in every
   * day, and a user left with only those would be locked out once they ran out.
   * The check and the delete run in one transaction that first locks the
   * user's row, so two parallel removals cannot each leave the other as "last".
   */
  async remove(tenant: Tenant, user: User, session: Session, id: string): Promise<void> {
    // Stryker disable next-line StringLiteral: equivalent (a full session may do anything, a registration session neither this nor '')
    await this.requireMayChange(tenant, user, session, 'remove-method');
    const credential = await this.require(tenant, user, id);
    await this.deps.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ updated_at: this.deps.clock.now() }).where('tenant_id', '=', tenant.id).where('id', '=', user.id).execute();
      if (tenant.policy.mfaRequired && credential.state === 'active') {
        // Removing the recovery codes needs one other method of any kind; removing anything else, one that is not recovery codes.
        const others = await trx
          .selectFrom('credentials')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('tenant_id', '=', tenant.id)
          .where('user_id', '=', user.id)
          .where('state', '=', 'active')
          .where('id', '!=', id)
          .$if(credential.type !== 'recovery-codes', (q) => q.where('type', '!=', 'recovery-codes'))
          .executeTakeFirstOrThrow();
        if (Number(others.n) === 0) throw new AppError('last-method');
      }
      await trx.deleteFrom('credentials').where('tenant_id', '=', tenant.id).where('id', '=', id).execute();
    });
    await this.deps.credentials.ensureDefault(tenant.id, user.id);
    if (credential.state === 'active') await this.recordChange(tenant, user, session, 'method.removed', credential);
  }

  private async recordChange(tenant: Tenant, user: User, session: Session, action: 'method.added' | 'method.removed', credential: Credential): Promise<void> {
    await this.deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action,
      targetUserId: user.id,
      details: { type: credential.type, label: credential.label, credentialId: credential.id, sessionScope: session.scope },
    });
  }

  /**
   * The set-up details of a pending method again (its secret, a new pairing
   * link), for a second try at confirming it: only to the session that began
   * the set-up, as recently as any change. Anyone else who holds the user's
   * password, or an old session of theirs, would otherwise copy the owner's
   * new authenticator as it is being set up.
   */
  async setupDetails(tenant: Tenant, user: User, session: Session, id: string): Promise<Record<string, unknown>> {
    await this.requireMayChange(tenant, user, session, 'confirm-method');
    const credential = await this.require(tenant, user, id);
    const method = this.deps.methods.get(credential.type);
    if (credential.state !== 'pending' || !method?.reveal) throw new AppError('invalid-state', 'this method is already active');
    requireSetupBy(credential, session);
    return method.reveal(tenant, user, credential);
  }

  private async require(tenant: Tenant, user: User, id: string): Promise<Credential> {
    const credential = await this.deps.credentials.get(tenant.id, user.id, id);
    if (!credential) throw new AppError('not-found', 'no such method');
    return credential;
  }

  private async view(c: Credential): Promise<MethodView> {
    return {
      id: c.id,
      type: c.type,
      label: c.label,
      state: c.state,
      default: c.isDefault,
      createdAt: new Date(c.createdAt).toISOString(),
      lastUsedAt: c.lastUsedAt === null ? null : new Date(c.lastUsedAt).toISOString(),
      ...(c.type === 'recovery-codes' ? { remaining: await remainingRecoveryCodes(this.deps.db, c.tenantId, c.id) } : {}),
      ...(typeof c.publicData.to === 'string' ? { to: c.publicData.to } : {}),
      ...(c.type === 'webauthn' && c.publicData.kind === 'passkey' ? { signsInAlone: true } : {}),
    };
  }
}

/**
 * A pending set-up belongs to the session that began it: only that session
 * sees its secret again, sends its confirmation code again or confirms it.
 * Another session of the same user is told there is no such method.
 */
function requireSetupBy(credential: Credential, session: Session): void {
  if (credential.publicData.setupSession !== session.id) throw new AppError('not-found', 'no such method');
}

/** The session asking to send a code, and its address: each has its own hourly send limit. */
const requesterOf = (session: Session, ip: string | undefined) => ({ origin: `session:${session.id}`, ip: ip ?? 'unknown' });

/** A registration session may only add the user's first method. */
const activationFor = (session: Session): Activation => (session.scope === 'register' ? 'first-method' : 'any');
