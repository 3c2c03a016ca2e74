import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import type { Tenant } from '../directory/tenants.ts';
import type { User } from '../directory/users.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import { AppError } from '../errors/app-error.ts';
import type { Credentials, Credential } from './credentials.ts';
import type { MethodRegistry } from './registry.ts';
import type { EnrolInput } from './method.ts';
import type { AuthenticatorKind } from './webauthn/webauthn-method.ts';
import type { SentCode } from './out-of-band/out-of-band-method.ts';
import { remainingRecoveryCodes } from './recovery-codes/recovery-codes-method.ts';
import { requireMayAdd, requireSessionMay, type SessionAction } from '../sessions/session-scope.ts';

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
}

export interface MethodManagementDeps {
  db: Db;
  credentials: Credentials;
  methods: MethodRegistry;
  sessions: Sessions;
  clock: Clock;
}

/** A user's own methods: list, register, confirm, rename, make default, remove. */
export class MethodManagement {
  constructor(private readonly deps: MethodManagementDeps) {}

  /**
   * What every change needs: a session whose scope allows it (a registration
   * session may only add and confirm a method) and a recent sign-in, so a
   * stolen older session cannot add an attacker's method.
   */
  private requireMayChange(session: Session, action: SessionAction): void {
    requireSessionMay(session.scope, action);
    this.deps.sessions.requireRecent(session);
  }

  async list(tenant: Tenant, user: User): Promise<MethodView[]> {
    const credentials = await this.deps.credentials.listForUser(tenant.id, user.id);
    return Promise.all(credentials.map((c) => this.view(c)));
  }

  async webauthnOptions(tenant: Tenant, user: User, session: Session, kind: AuthenticatorKind) {
    this.requireMayChange(session, 'add-method');
    if (!tenant.policy.allowedMethods.includes('webauthn')) throw new AppError('method-not-permitted');
    return this.deps.methods.webauthn.registrationOptions(tenant, user, kind);
  }

  /** `ip` is where the request came from: methods that send codes count their sends by session and source. */
  async enrol(tenant: Tenant, user: User, session: Session, type: string, input: EnrolInput, ip?: string): Promise<{ id: string; state: string } & Record<string, unknown>> {
    this.requireMayChange(session, 'add-method');
    const method = this.deps.methods.get(type);
    if (!method) throw new AppError('invalid-request', `"${type}" is not a method type this server can register`);
    requireMayAdd(session.scope, type);
    if (!tenant.policy.allowedMethods.includes(type)) throw new AppError('method-not-permitted');
    const { credential, reveal } = await method.enrol(tenant, user, { ...input, requester: requesterOf(session, ip) });
    // A registration session that has now proved a new factor completes the sign-in.
    if (session.scope === 'register' && credential.state === 'active' && method.enrolmentProvesPossession) {
      await this.deps.sessions.upgrade(session, [...new Set([...session.amr, 'hwk', 'mfa'])]);
    }
    return { id: credential.id, state: credential.state, ...reveal };
  }

  /** Confirms a pending method with a code. A restricted (registration) session becomes a full one. */
  async confirm(tenant: Tenant, user: User, session: Session, id: string, code: string): Promise<{ id: string; state: 'active' }> {
    this.requireMayChange(session, 'confirm-method');
    const credential = await this.require(tenant, user, id);
    if (credential.state !== 'pending') throw new AppError('invalid-state', 'this method is already active');
    const method = this.deps.methods.get(credential.type);
    if (!method?.confirm) throw new AppError('invalid-state', 'this method needs no confirmation');
    if (!(await method.confirm(credential, code))) throw new AppError('invalid-code');
    if (session.scope === 'register') await this.deps.sessions.upgrade(session, [...new Set([...session.amr, 'otp', 'mfa'])]);
    return { id, state: 'active' };
  }

  /** A new confirmation code for a pending phone number or email address. */
  async resendConfirmation(tenant: Tenant, user: User, session: Session, id: string, ip?: string): Promise<{ id: string; delivery: SentCode }> {
    this.requireMayChange(session, 'resend-confirmation');
    const credential = await this.require(tenant, user, id);
    const method = this.deps.methods.outOfBand(credential.type);
    if (!method) throw new AppError('invalid-state', 'only phone numbers and email addresses get codes');
    const sent = await method.resendConfirmation(tenant, credential, requesterOf(session, ip));
    return { id, delivery: sent.delivery };
  }

  async update(tenant: Tenant, user: User, session: Session, id: string, changes: { label?: string | undefined; default?: boolean | undefined }): Promise<MethodView> {
    this.requireMayChange(session, 'change-method');
    const credential = await this.require(tenant, user, id);
    const label = changes.label?.trim();
    if (label !== undefined && (label.length === 0 || label.length > 100)) throw new AppError('invalid-request', 'a label is 1 to 100 characters');
    if (changes.default === true && credential.state !== 'active') throw new AppError('invalid-state', 'only an active method can be the default');
    if (changes.default === false) throw new AppError('invalid-request', 'choose another method as default instead of unsetting this one');
    await this.deps.credentials.update(credential, { ...(label !== undefined ? { label } : {}), ...(changes.default ? { isDefault: true } : {}) });
    return this.view((await this.deps.credentials.get(tenant.id, user.id, id))!);
  }

  /**
   * Removes a method. While the tenant requires MFA, the last active method
   * stays: the check and the delete run in one transaction that first locks the
   * user's row, so two parallel removals cannot each leave the other as "last".
   */
  async remove(tenant: Tenant, user: User, session: Session, id: string): Promise<void> {
    this.requireMayChange(session, 'remove-method');
    const credential = await this.require(tenant, user, id);
    await this.deps.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ updated_at: this.deps.clock.now() }).where('tenant_id', '=', tenant.id).where('id', '=', user.id).execute();
      if (tenant.policy.mfaRequired && credential.state === 'active') {
        const others = await trx
          .selectFrom('credentials')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('tenant_id', '=', tenant.id)
          .where('user_id', '=', user.id)
          .where('state', '=', 'active')
          .where('id', '!=', id)
          .executeTakeFirstOrThrow();
        if (Number(others.n) === 0) throw new AppError('last-method');
      }
      await trx.deleteFrom('credentials').where('tenant_id', '=', tenant.id).where('id', '=', id).execute();
    });
    await this.deps.credentials.ensureDefault(tenant.id, user.id);
  }

  /** The set-up details of a pending method again, for a second try at confirming it. */
  async setupDetails(tenant: Tenant, user: User, id: string): Promise<Record<string, unknown>> {
    const credential = await this.require(tenant, user, id);
    const method = this.deps.methods.get(credential.type);
    if (credential.state !== 'pending' || !method?.reveal) throw new AppError('invalid-state', 'this method is already active');
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
    };
  }
}

/** The session asking to send a code, and its address: each has its own hourly send limit. */
const requesterOf = (session: Session, ip: string | undefined) => ({ origin: `session:${session.id}`, ip: ip ?? 'unknown' });
