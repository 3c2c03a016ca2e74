import type { Clock } from '../clock.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { Tenant } from '../directory/tenants.ts';
import type { Users, UserWithSecret } from '../directory/users.ts';
import type { PasswordHasher, WorkWindow } from '../directory/password-hasher.ts';
import type { Credentials, Credential } from '../methods/credentials.ts';
import type { MethodRegistry } from '../methods/registry.ts';
import type { VerifyInput } from '../methods/method.ts';
import type { Sessions } from '../sessions/sessions.ts';
import type { SigninEvents } from '../activity/signin-events.ts';
import { AppError } from '../errors/app-error.ts';
import { randomToken } from '../crypto/random.ts';
import type { AbuseLimits, Attempt } from './abuse-limits.ts';
import { FLOW_LIFETIME_MS, FLOW_MAX_ATTEMPTS, flowFailuresKey, flowKey, type Flow } from './flow.ts';
import { methodChoices, type MethodChoice } from './method-choices.ts';

export interface RequestContext extends WorkWindow {
  ip: string;
  userAgent?: string | undefined;
  app?: string | undefined;
}

export interface IssuedSession {
  token: string;
  expiresAt: string;
}

export type PasswordStepResult =
  | { state: 'factor_required'; flow: string; methods: MethodChoice[] }
  | { state: 'registration_required'; flow: null; methods: MethodChoice[]; session: IssuedSession }
  | { state: 'complete'; flow: null; methods: MethodChoice[]; session: IssuedSession };

export interface SigninDeps {
  clock: Clock;
  ephemeral: EphemeralStore;
  users: Users;
  hasher: PasswordHasher;
  credentials: Credentials;
  methods: MethodRegistry;
  sessions: Sessions;
  events: SigninEvents;
  limits: AbuseLimits;
  /** Called with background failures (a rehash that could not be saved), never with secrets. */
  onBackgroundError?: (err: unknown, what: string) => void;
}

/**
 * The sign-in state machine: identifier and password, then a second factor,
 * then a session. Its state between steps lives in the ephemeral store.
 */
export class SigninService {
  constructor(private readonly deps: SigninDeps) {}

  async passwordStep(tenant: Tenant, username: string, password: string, ctx: RequestContext): Promise<PasswordStepResult> {
    const { deps } = this;
    const attempt: Attempt = { factor: 'password', account: `${tenant.id}|${username.normalize('NFKC').trim().toLowerCase()}`, ip: ctx.ip };
    await deps.limits.begin(attempt);

    const user = await deps.users.findByUsername(tenant.id, username);
    // Unknown users and users without a password cost one full Argon2id
    // verification too, and get the same answer: neither timing nor message
    // tells whether the account exists.
    const passwordOk = user?.passwordHash ? await deps.hasher.verify(user.passwordHash, password, ctx) : await deps.hasher.verifyNothing(password, ctx);
    if (!user || !passwordOk) {
      await this.record(tenant, user, username, ctx, 'password', 'failure', 'invalid_credentials');
      throw new AppError('invalid-credentials');
    }
    await deps.limits.succeeded(attempt);
    if (user.status !== 'active') {
      await this.record(tenant, user, username, ctx, 'password', 'failure', 'account_disabled');
      throw new AppError('account-disabled');
    }
    this.rehashInBackground(user, password);

    const active = await deps.credentials.listForUser(tenant.id, user.id, 'active');
    const methods = methodChoices(tenant, active, deps.methods);
    if (methods.length === 0 || user.mustRegister) {
      if (!tenant.policy.mfaRequired) {
        await this.record(tenant, user, username, ctx, 'password', 'success', 'ok', 'password');
        return { state: 'complete', flow: null, methods, session: await this.issueSession(tenant, user.id, 'full', ['pwd'], ctx) };
      }
      await this.record(tenant, user, username, ctx, 'password', 'success', 'registration_required', 'password');
      return { state: 'registration_required', flow: null, methods, session: await this.issueSession(tenant, user.id, 'register', ['pwd'], ctx) };
    }

    const now = deps.clock.now();
    const flow: Flow = {
      id: randomToken(24),
      kind: 'second-factor',
      tenantId: tenant.id,
      userId: user.id,
      username: user.username,
      amr: ['pwd'],
      createdAt: now,
      expiresAt: now + FLOW_LIFETIME_MS,
    };
    await deps.ephemeral.set(flowKey(flow.id), flow, FLOW_LIFETIME_MS);
    await this.record(tenant, user, username, ctx, 'password', 'success', 'factor_required', 'password');
    return { state: 'factor_required', flow: flow.id, methods };
  }

  /** The second-factor choices of a flow still in progress. */
  async flowMethods(tenant: Tenant, flowId: string): Promise<MethodChoice[]> {
    const flow = await this.loadFlow(tenant, flowId);
    if (flow.kind === 'passkey') return [];
    const active = await this.deps.credentials.listForUser(tenant.id, flow.userId, 'active');
    const choices = methodChoices(tenant, active, this.deps.methods);
    // Methods removed while the flow was open leave nothing to verify: start again.
    if (choices.length === 0) throw new AppError('flow-not-found');
    return choices;
  }

  async challenge(tenant: Tenant, flowId: string, methodRef: string): Promise<{ method: string; type: string } & Record<string, unknown>> {
    const flow = await this.loadFlow(tenant, flowId);
    if (flow.kind === 'passkey') throw new AppError('invalid-state', 'a passkey sign-in was challenged when it started');
    const candidates = await this.resolveCredentials(tenant, flow, methodRef);
    const type = candidates[0]!.type;
    try {
      if (!this.deps.methods.available(type)) throw new AppError('method-unavailable');
      const extra = await this.deps.methods.get(type)!.challenge(candidates, { flowId: flow.id, tenant });
      return { method: candidates.length === 1 ? candidates[0]!.id : type, type, ...extra };
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'method-unavailable') throw err;
      // The answer names what the user can do instead; the availability of each is as of now.
      const active = await this.deps.credentials.listForUser(tenant.id, flow.userId, 'active');
      const others = methodChoices(tenant, active, this.deps.methods).filter((m) => m.type !== type);
      throw new AppError('method-unavailable', err.detail, { methods: others });
    }
  }

  /**
   * Starts a passwordless sign-in: WebAuthn options for any discoverable
   * credential (passkey) of this tenant, with user verification required, so
   * the passkey alone proves two factors.
   */
  async startPasskey(tenant: Tenant): Promise<{ flow: string; webauthn: Record<string, unknown> }> {
    if (!tenant.policy.allowedMethods.includes('webauthn')) throw new AppError('method-not-permitted');
    const now = this.deps.clock.now();
    const flow: Flow = { id: randomToken(24), kind: 'passkey', tenantId: tenant.id, userId: '', username: '', amr: [], createdAt: now, expiresAt: now + FLOW_LIFETIME_MS };
    await this.deps.ephemeral.set(flowKey(flow.id), flow, FLOW_LIFETIME_MS);
    const extra = await this.deps.methods.get('webauthn')!.challenge([], { flowId: flow.id, tenant, requireUserVerification: true });
    return { flow: flow.id, webauthn: extra.webauthn as Record<string, unknown> };
  }

  async verify(tenant: Tenant, flowId: string, methodRef: string, input: VerifyInput, ctx: RequestContext): Promise<{ state: 'complete'; session: IssuedSession }> {
    const { deps } = this;
    const flow = await this.loadFlow(tenant, flowId);
    const candidates = flow.kind === 'passkey' ? await this.passkeyCandidates(tenant, methodRef, input) : await this.resolveCredentials(tenant, flow, methodRef);
    const userId = flow.kind === 'passkey' ? (candidates[0]?.userId ?? '') : flow.userId;
    const attempt: Attempt = { factor: 'second-factor', account: `${tenant.id}|${userId || 'passkey'}`, ip: ctx.ip };
    await deps.limits.begin(attempt);

    const type = candidates[0]?.type ?? 'webauthn';
    const verified = candidates.length > 0 ? await deps.methods.get(type)!.verify(candidates, input, { flowId: flow.id, tenant, requireUserVerification: flow.kind === 'passkey' }) : undefined;
    // A passkey flow learns its user only now, from the credential.
    const passkeyUser = flow.kind === 'passkey' && userId ? await deps.users.get(tenant.id, userId) : undefined;
    const recordAs = { ...flow, userId, username: flow.username || (passkeyUser?.username ?? '') };
    if (!verified) {
      const failures = await deps.ephemeral.increment(flowFailuresKey(flow.id), FLOW_LIFETIME_MS);
      const attemptsLeft = Math.max(0, FLOW_MAX_ATTEMPTS - failures);
      // Out of attempts: the flow is gone and the sign-in starts again.
      if (attemptsLeft === 0) await deps.ephemeral.delete(flowKey(flow.id));
      if (userId) await this.recordFlow(recordAs, ctx, 'failure', 'invalid_code', flow.kind === 'passkey' ? 'passkey' : type);
      throw new AppError('invalid-code', attemptsLeft === 0 ? 'No attempts left; start the sign-in again' : undefined, { attemptsLeft });
    }
    if (flow.kind === 'passkey' && passkeyUser?.status !== 'active') throw new AppError('account-disabled');

    // Taking the flow is the commit point: of two racing correct answers only one gets a session.
    if (!(await deps.ephemeral.take<Flow>(flowKey(flow.id)))) throw new AppError('flow-not-found');
    await deps.limits.succeeded(attempt);
    const amr = [...new Set([...flow.amr, ...verified.amr, 'mfa'])];
    // Issued and recorded together, so both rows share one group commit.
    const [session] = await Promise.all([
      this.issueSession(tenant, userId, 'full', amr, ctx),
      this.recordFlow(recordAs, ctx, 'success', 'ok', flow.kind === 'passkey' ? 'passkey' : type),
    ]);
    return { state: 'complete', session };
  }

  /** The passkey an assertion names, looked up by its WebAuthn credential id. */
  private async passkeyCandidates(tenant: Tenant, methodRef: string, input: VerifyInput): Promise<Credential[]> {
    if (methodRef !== 'passkey' && methodRef !== 'webauthn') throw new AppError('invalid-request', 'a passkey sign-in is verified with method "passkey"');
    const id = (input.assertion as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 1024) throw new AppError('invalid-request', 'assertion.id is missing');
    const credential = await this.deps.credentials.findByExternalId(tenant.id, id);
    return credential && credential.state === 'active' && credential.type === 'webauthn' && tenant.policy.allowedMethods.includes('webauthn') ? [credential] : [];
  }

  private async loadFlow(tenant: Tenant, flowId: string): Promise<Flow> {
    const flow = await this.deps.ephemeral.get<Flow>(flowKey(flowId));
    // A flow of another tenant is answered exactly like an unknown one.
    if (!flow || flow.tenantId !== tenant.id || flow.expiresAt <= this.deps.clock.now()) throw new AppError('flow-not-found');
    return flow;
  }

  /** A method reference is a credential id or a method type (all of the user's credentials of that type). */
  private async resolveCredentials(tenant: Tenant, flow: Flow, methodRef: string): Promise<Credential[]> {
    const active = await this.deps.credentials.listForUser(tenant.id, flow.userId, 'active');
    const usable = active.filter((c) => this.deps.methods.get(c.type) && tenant.policy.allowedMethods.includes(c.type));
    const byId = usable.filter((c) => c.id === methodRef);
    const found = byId.length > 0 ? byId : usable.filter((c) => c.type === methodRef);
    if (found.length === 0) {
      throw new AppError('invalid-request', 'that method is not one of this sign-in\'s methods', { methods: methodChoices(tenant, active, this.deps.methods) });
    }
    return found;
  }

  private async issueSession(tenant: Tenant, userId: string, scope: 'full' | 'register', amr: string[], ctx: RequestContext): Promise<IssuedSession> {
    const { token, session } = await this.deps.sessions.create({ tenantId: tenant.id, userId, scope, amr, ip: ctx.ip, userAgent: ctx.userAgent });
    return { token, expiresAt: new Date(session.expiresAt).toISOString() };
  }

  private rehashInBackground(user: UserWithSecret, password: string): void {
    if (!user.passwordHash || !this.deps.hasher.needsRehash(user.passwordHash)) return;
    void this.deps.hasher
      .hash(password)
      .then((hash) => this.deps.users.setPasswordHash(user.tenantId, user.id, hash))
      .catch((err: unknown) => this.deps.onBackgroundError?.(err, 'password rehash'));
  }

  private record(
    tenant: Tenant,
    user: UserWithSecret | undefined,
    username: string,
    ctx: RequestContext,
    step: 'password' | 'second-factor',
    outcome: 'success' | 'failure',
    reason: string,
    method?: string,
  ): Promise<void> {
    return this.deps.events.record({ tenantId: tenant.id, userId: user?.id ?? null, username, ip: ctx.ip, userAgent: ctx.userAgent, app: ctx.app, step, outcome, reason, method });
  }

  private recordFlow(flow: Flow, ctx: RequestContext, outcome: 'success' | 'failure', reason: string, method: string): Promise<void> {
    return this.deps.events.record({
      step: flow.kind === 'passkey' ? 'passkey' : 'second-factor',
      tenantId: flow.tenantId,
      userId: flow.userId,
      username: flow.username,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      app: ctx.app,
      outcome,
      reason,
      method,
    });
  }
}
