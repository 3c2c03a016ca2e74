/** The sign-in state machine: password, second factor or passkey, each answered with the next step; limits, events and sessions. */
import type { Clock } from '../clock.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { Users, UserWithSecret } from '../directory/users.ts';
import type { PasswordHasher, WorkWindow } from '../directory/password-hasher.ts';
import type { Credentials, Credential } from '../methods/credentials.ts';
import type { MethodRegistry } from '../methods/registry.ts';
import type { ApprovalState, ChallengeResult, Verified, VerifyInput } from '../methods/method.ts';
import type { Sessions } from '../sessions/sessions.ts';
import type { SigninEvents } from '../activity/signin-events.ts';
import { AppError } from '../errors/app-error.ts';
import { allInOrder } from '../all-in-order.ts';
import { randomToken } from '../crypto/random.ts';
import type { AbuseLimits, Attempt, Place } from './abuse-limits.ts';
import { FLOW_LIFETIME_MS, FLOW_MAX_ATTEMPTS, FLOW_RECORD_VERSION, FlowRecord, flowFailuresKey, flowKey, type Flow, type FlowRef } from './flow.ts';
import { NumberRecord, parseRecord } from '../store/parse-record.ts';
import { methodChoices, type MethodChoice } from './method-choices.ts';
import type { FactorPrompt, IssuedSession, NextStep, RememberedBrowser } from './next-step.ts';
import { describeMethod, methodName } from '../methods/registry.ts';
import { challengeSends } from '../methods/method-descriptor.ts';
import type { AccessPass, AccessPasses } from '../methods/tap/access-passes.ts';
import type { AuditLog } from '../activity/audit-log.ts';
import type { SigninReason } from '../activity/signin-reasons.ts';
import type { User } from '../directory/users.ts';
import type { RememberedDevices } from '../sessions/remembered-devices.ts';
import type { KnownBrowsers } from './known-browsers.ts';
import type { AnonymousStarts } from './anonymous-starts.ts';
import { PASSWORD_CANNOT_REGISTER, whatPasswordAloneOpens } from './password-registers.ts';

export interface RequestContext extends WorkWindow {
  ip: string;
  userAgent?: string | undefined;
  app?: string | undefined;
  /** The remembered-browser token this browser holds (pages only). */
  rememberedDevice?: string | undefined;
  /** Remember this browser once the second factor is proved (pages only, when the policy allows). */
  rememberDevice?: boolean | undefined;
  /** The app asked for a second factor: as if the tenant required one, and no remembered browser stands in for it. */
  requireMfa?: boolean | undefined;
  /** The known-browser mark this browser holds (pages only; see known-browsers.ts). */
  knownBrowser?: string | undefined;
}

export type { IssuedSession, RememberedBrowser } from './next-step.ts';

/** When the user's sign-ins in progress were last ended; a flow begun before then is gone. */
const flowsEndedKey = (tenantId: string, userId: string) => `flows-ended:${tenantId}:${userId}`;

/** Whether a user has a way to sign in of their own: any active method (a TAP is the administrator's, not theirs). */
const hasWayIn = (methods: MethodChoice[]) => methods.some((m) => m.type !== 'tap');

/** A sign-in refused after its session was written, because the user's sessions were ended meanwhile (see issueSession). */
class SessionsEndedMeanwhile extends AppError {
  constructor() {
    super('flow-not-found');
  }
}

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
  passes: AccessPasses;
  audit: AuditLog;
  devices: RememberedDevices;
  knownBrowsers: KnownBrowsers;
  anonymousStarts: AnonymousStarts;
  /** Told of every sign-in of a break-glass account, for the alert metric and log (the audit entry is written here). */
  onBreakGlass?: (tenant: Tenant, user: User) => void;
  /** Called with background failures (a rehash that could not be saved), never with secrets. */
  onBackgroundError?: (err: unknown, what: string) => void;
}

/**
 * The sign-in state machine: identifier and password, then a second factor,
 * then a session. Its state between steps lives in the ephemeral store.
 */
export class SigninService {
  constructor(private readonly deps: SigninDeps) {
    // Whatever ends all of a user's sessions (a password change, a reset, a disabled account) ends their
    // sign-ins in progress too: a flow begun with the old password must not finish after the change.
    deps.sessions.onAllEnded((tenantId, userId) => deps.ephemeral.set(flowsEndedKey(tenantId, userId), deps.clock.now(), FLOW_LIFETIME_MS));
  }

  /**
   * The first factor, whatever it is (a password, or a TAP in its place):
   * guessing limits, the check, and one answer for every failure. Unknown users
   * cost one full Argon2id verification too (the check does it), so neither
   * timing nor message tells whether the account exists.
   */
  private async firstFactor(
    tenant: Tenant,
    username: string,
    ctx: RequestContext,
    method: 'password' | 'tap',
    check: (user: UserWithSecret | undefined) => Promise<boolean>,
  ): Promise<UserWithSecret> {
    const { deps } = this;
    const user = await deps.users.findByUsername(tenant.id, username);
    const account = username.normalize('NFKC').trim().toLowerCase();
    const attempt = this.attempt(tenant, method, account, ctx, method === 'password' ? await this.place(tenant, 'password', account, user, ctx) : 'stranger');
    await deps.limits.begin(attempt);
    const recordedMethod = method === 'tap' ? 'tap' : undefined;
    if (!(await check(user)) || !user) {
      await this.record(tenant, user, username, ctx, 'password', 'failure', 'invalid_credentials', recordedMethod);
      throw new AppError('invalid-credentials');
    }
    await deps.limits.succeeded(attempt);
    if (user.status !== 'active') {
      await this.record(tenant, user, username, ctx, 'password', 'failure', 'account_disabled', recordedMethod);
      throw new AppError('account-disabled');
    }
    return user;
  }

  async passwordStep(tenant: Tenant, username: string, password: string, ctx: RequestContext): Promise<NextStep> {
    const begunAt = this.deps.clock.now();
    const { deps } = this;
    const user = await this.firstFactor(tenant, username, ctx, 'password', (u) =>
      u?.passwordHash ? deps.hasher.verify(u.passwordHash, password, ctx) : deps.hasher.verifyNothing(password, ctx),
    );
    this.rehashInBackground(user, password);
    const endedMeanwhile = () => this.record(tenant, user, username, ctx, 'password', 'failure', 'sessions_ended', 'password');

    const methods = await this.choicesFor(tenant, user.id);
    const mfaRequired = tenant.policy.mfaRequired || ctx.requireMfa === true;
    const alone = whatPasswordAloneOpens(user, methods, mfaRequired);
    if (alone.opens === 'nothing') {
      // After a reset or a reported sign-in, someone else may know this password: it opens nothing on its own.
      await this.record(tenant, user, username, ctx, 'password', 'failure', alone.why, 'password');
      throw new AppError('password-cannot-register', PASSWORD_CANNOT_REGISTER[alone.why]);
    }
    if (alone.opens === 'registration') {
      await this.record(tenant, user, username, ctx, 'password', 'success', 'registration_required', 'password');
      await this.alertIfBreakGlass(tenant, user, 'password');
      return { kind: 'register', methods, session: await this.issueSession(tenant, user.id, 'register', ['pwd'], ctx, begunAt, endedMeanwhile) };
    }
    if (alone.opens === 'session') {
      await this.record(tenant, user, username, ctx, 'password', 'success', 'ok', 'password');
      await this.alertIfBreakGlass(tenant, user, 'password');
      return { kind: 'done', methods, session: await this.issueSession(tenant, user.id, 'full', ['pwd'], ctx, begunAt, endedMeanwhile) };
    }
    // A browser the user asked to remember skips the second factor it proved there, for as long as the policy
    // says. The session says only `pwd`: no second factor was proved in it, so an app or the admin console
    // that demands one asks for it again.
    if (!ctx.requireMfa && (await deps.devices.recognises(tenant, user.id, ctx.rememberedDevice))) {
      await this.record(tenant, user, username, ctx, 'password', 'success', 'remembered_device', 'password');
      await this.alertIfBreakGlass(tenant, user, 'password');
      return { kind: 'done', methods, session: await this.issueSession(tenant, user.id, 'full', ['pwd'], ctx, begunAt, endedMeanwhile) };
    }
    if (!methods.some((m) => m.available)) {
      await this.record(tenant, user, username, ctx, 'password', 'failure', 'no_usable_method', 'password');
      return { kind: 'no-way-in', methods, retryAfter: 60 };
    }

    const flowId = await this.openFlow(tenant, user, 'second-factor');
    await this.record(tenant, user, username, ctx, 'password', 'success', 'factor_required', 'password');
    return { kind: 'factor', flow: flowId, methods };
  }

  /**
   * Signs in with a Temporary Access Pass in place of the password: a new hire
   * with no password, or someone who lost every method. The pass is strong
   * enough on its own; a user with no method gets a session that registers one.
   */
  async tapStep(tenant: Tenant, username: string, tap: string, ctx: RequestContext): Promise<Extract<NextStep, { kind: 'register' | 'done' }>> {
    const begunAt = this.deps.clock.now();
    const { deps } = this;
    let pass: AccessPass | undefined;
    const user = await this.firstFactor(tenant, username, ctx, 'tap', async (u) => {
      if (!tenant.policy.allowedMethods.includes('tap')) return deps.hasher.verifyNothing(tap, ctx);
      // A disabled account's pass is checked (so the answer is the same as for an active one) but not used up.
      if (u && u.status !== 'active') return deps.passes.check(tenant.id, u.id, tap, ctx);
      pass = await deps.passes.use(tenant.id, u?.id, tap, ctx);
      return pass !== undefined;
    });
    await deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action: 'tap.used',
      targetUserId: user.id,
      details: { as: 'password', passId: pass!.id, uses: pass!.uses },
    });
    const methods = await this.choicesFor(tenant, user.id);
    const endedMeanwhile = () => this.record(tenant, user, username, ctx, 'password', 'failure', 'sessions_ended', 'tap');
    await this.alertIfBreakGlass(tenant, user, 'tap');
    if (!hasWayIn(methods) && (tenant.policy.mfaRequired || user.mustRegister)) {
      await this.record(tenant, user, username, ctx, 'password', 'success', 'registration_required', 'tap');
      return { kind: 'register', methods, session: await this.issueSession(tenant, user.id, 'register', ['tap'], ctx, begunAt, endedMeanwhile) };
    }
    await this.record(tenant, user, username, ctx, 'password', 'success', 'ok', 'tap');
    return { kind: 'done', methods, session: await this.issueSession(tenant, user.id, 'full', ['tap', 'mfa'], ctx, begunAt, endedMeanwhile) };
  }

  /** The second-factor choices of a flow still in progress. */
  async flowMethods(tenant: Tenant, ref: FlowRef): Promise<MethodChoice[]> {
    const flow = await this.loadFlow(tenant, ref);
    if (flow.kind === 'passkey') return [];
    const choices = await this.choicesFor(tenant, flow.userId);
    // Methods removed while the flow was open leave nothing to verify: start again.
    if (choices.length === 0) throw new AppError('flow-not-found');
    if (!choices.some((m) => m.available)) throw new AppError('no-usable-method', undefined, { methods: choices }, 60);
    return choices;
  }

  /**
   * A user's second-factor choices now: their methods (unavailable ones last),
   * a `tap` choice while they hold a valid pass, and, under the `tap-only` fail
   * mode, a `tap` choice whenever nothing else can be used.
   */
  async choicesFor(tenant: Tenant, userId: string): Promise<MethodChoice[]> {
    const [active, pass] = await Promise.all([
      this.deps.credentials.listForUser(tenant.id, userId, 'active'),
      tenant.policy.allowedMethods.includes('tap') ? this.deps.passes.active(tenant.id, userId) : undefined,
    ]);
    const choices = methodChoices(tenant, active, this.deps.methods);
    const noneWorks = choices.length > 0 && !choices.some((m) => m.available);
    if (pass || (noneWorks && tenant.policy.failMode === 'tap-only')) {
      choices.push({ id: 'tap', type: 'tap', label: methodName('tap'), available: true, default: false });
    }
    return choices;
  }

  async challenge(
    tenant: Tenant,
    ref: FlowRef,
    methodRef: string,
    ctx: Pick<RequestContext, 'ip' | 'userAgent' | 'app'>,
  ): Promise<{ method: string; type: string } & ChallengeResult> {
    const flow = await this.loadFlow(tenant, ref);
    if (flow.kind === 'passkey') throw new AppError('invalid-state', 'a passkey sign-in was challenged when it started');
    if (methodRef === 'tap') {
      await this.requireTapChoice(tenant, flow);
      return { method: 'tap', type: 'tap' };
    }
    const candidates = await this.resolveCredentials(tenant, flow, methodRef);
    const type = candidates[0]!.type;
    try {
      if (!this.deps.methods.available(type)) throw new AppError('method-unavailable');
      const extra = await this.deps.methods
        .get(type)!
        .challenge(candidates, { flowId: flow.id, tenant, ip: ctx.ip, username: flow.username, userAgent: ctx.userAgent, app: ctx.app });
      return { method: candidates.length === 1 ? candidates[0]!.id : type, type, ...extra };
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'method-unavailable') throw err;
      // The answer names what the user can do instead; the availability of each is as of now.
      const others = (await this.choicesFor(tenant, flow.userId)).filter((m) => m.type !== type);
      throw new AppError('method-unavailable', err.detail, { methods: others });
    }
  }

  /**
   * Where a challenge answered elsewhere (a push approval) stands for this
   * flow: the first method with something to say. `none` when no such challenge was started.
   */
  async status(tenant: Tenant, ref: FlowRef): Promise<{ state: ApprovalState; type?: string }> {
    const flow = await this.loadFlow(tenant, ref);
    for (const type of this.deps.methods.types) {
      const state = (await this.deps.methods.get(type)!.status?.({ flowId: flow.id, tenant })) ?? 'none';
      if (state !== 'none') return { state, type };
    }
    return { state: 'none' };
  }

  /**
   * Starts a passwordless sign-in: WebAuthn options for any discoverable
   * credential (passkey) of this tenant, with user verification required, so
   * the passkey alone proves two factors.
   */
  async startPasskey(tenant: Tenant, ctx: Pick<RequestContext, 'ip'>): Promise<{ flow: string; webauthn: Record<string, unknown> }> {
    if (!tenant.policy.allowedMethods.includes('webauthn')) throw new AppError('method-not-permitted');
    await this.deps.anonymousStarts.take(ctx.ip);
    const now = this.deps.clock.now();
    const flow: Flow = {
      v: FLOW_RECORD_VERSION,
      id: randomToken(24),
      kind: 'passkey',
      tenantId: tenant.id,
      userId: '',
      username: '',
      amr: [],
      createdAt: now,
      expiresAt: now + FLOW_LIFETIME_MS,
    };
    await this.deps.ephemeral.set(flowKey(flow), flow, FLOW_LIFETIME_MS);
    // Stryker disable next-line ArrayDeclaration: equivalent (the method names only credentials with an external id, so a list of anything else names none, as the empty list does)
    const extra = await this.deps.methods.get('webauthn')!.challenge([], { flowId: flow.id, tenant, requireUserVerification: true });
    return { flow: flow.id, webauthn: extra.webauthn as Record<string, unknown> };
  }

  async verify(tenant: Tenant, flowId: string, methodRef: string, input: VerifyInput, ctx: RequestContext): Promise<Extract<NextStep, { kind: 'done' }>> {
    const { session, remembered } = await this.verifyInFlow(tenant, { id: flowId }, methodRef, input, ctx);
    return { kind: 'done', methods: [], session: session!, ...(remembered ? { remembered } : {}) };
  }

  /**
   * Makes a second factor ready to answer: the chosen method (or the first
   * choice) has its challenge started, a code sent unless `send` is false (a
   * wrong code was typed: the one sent stands). A method whose channel is down
   * gives way to the next that works, with a notice why; when none works the
   * answer is `no-way-in`. The pages render what this returns and decide none of it.
   */
  async prepareFactor(
    tenant: Tenant,
    flowId: string,
    preferred: string | undefined,
    ctx: Pick<RequestContext, 'ip' | 'userAgent' | 'app'>,
    options: { send: boolean },
  ): Promise<FactorPrompt | Extract<NextStep, { kind: 'no-way-in' }>> {
    let methods = await this.flowMethods(tenant, { id: flowId });
    if (methods.length === 0) throw new AppError('flow-not-found');
    let chosen = methods.find((m) => m.id === preferred) ?? methods.find((m) => m.type === preferred) ?? methods[0]!;
    let notice: FactorPrompt['notice'];
    for (;;) {
      const descriptor = describeMethod(chosen.type);
      if (descriptor && challengeSends(descriptor) && !options.send) return { flow: flowId, methods, chosen, challenge: {} };
      // Any of the user's passkeys (or paired devices) will do: the challenge names them all.
      const ref = descriptor?.signin.anyCredential ? chosen.type : chosen.id;
      try {
        const challenge = await this.challenge(tenant, { id: flowId }, ref, ctx);
        return { flow: flowId, methods, chosen, challenge, ...(notice ? { notice } : {}) };
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        if (err.code === 'code-recently-sent' || err.code === 'send-limit') {
          // A code already went out (or too many did): the form stays, for the code the person has.
          const wait = `You can ask for a new code in ${err.retryAfter ?? 30} seconds.`;
          const why = err.code === 'code-recently-sent' ? 'A code was sent moments ago; use that one.' : 'Too many codes were sent.';
          return { flow: flowId, methods, chosen, challenge: {}, notice: { kind: 'error', text: `${why} ${wait}` } };
        }
        if (err.code === 'push-pending' || err.code === 'push-limit') {
          // Nothing new was sent (fatigue limits): say why, with the other ways in below.
          return { flow: flowId, methods, chosen, challenge: {}, notice: { kind: 'error', text: err.message } };
        }
        if (err.code !== 'method-unavailable') throw err;
        methods = methods.map((m) => (m.type === chosen.type ? { ...m, available: false } : m));
        const fallback = methods.find((m) => m.available);
        const name = describeMethod(chosen.type)?.name ?? chosen.label;
        if (!fallback) return { kind: 'no-way-in', methods, retryAfter: 60, why: `${name} can't be used right now.` };
        notice = { kind: 'error', text: `${name} can't be used right now. Use another way to sign in.` };
        chosen = fallback;
      }
    }
  }

  /**
   * An app that checked the password itself (the REST app API) opens a
   * transaction: a second factor for the user, proved to that app alone. It
   * carries no `pwd` (Steadfast checked no password), only the app that opened
   * it can read or finish it, and it never yields a session.
   */
  startAppTransaction(tenant: Tenant, appId: string, user: User): Promise<string> {
    return this.openFlow(tenant, user, 'app-transaction', appId);
  }

  /** Whose transaction this is; `flow-not-found` unless it is open and belongs to this app. */
  async appTransactionUser(tenant: Tenant, ref: Required<FlowRef>): Promise<string> {
    return (await this.loadFlow(tenant, ref)).userId;
  }

  /** Verifies a second factor in an app's transaction: the factors proved, and no session. */
  async verifyForApp(
    tenant: Tenant,
    ref: Required<FlowRef>,
    methodRef: string,
    input: VerifyInput,
    ctx: RequestContext,
  ): Promise<{ userId: string; amr: string[] }> {
    const { userId, amr } = await this.verifyInFlow(tenant, ref, methodRef, input, ctx);
    return { userId, amr };
  }

  /** A flow between a proved password (checked here) or an app's request and the second factor. */
  private async openFlow(tenant: Tenant, user: User, kind: 'second-factor' | 'app-transaction', appId?: string): Promise<string> {
    const now = this.deps.clock.now();
    const flow: Flow = {
      v: FLOW_RECORD_VERSION,
      id: randomToken(24),
      kind,
      tenantId: tenant.id,
      userId: user.id,
      username: user.username,
      amr: kind === 'second-factor' ? ['pwd'] : [],
      breakGlass: user.breakGlass,
      knownBrowsersResetAt: user.knownBrowsersResetAt,
      ...(appId !== undefined ? { appId } : {}),
      createdAt: now,
      expiresAt: now + FLOW_LIFETIME_MS,
    };
    await this.deps.ephemeral.set(flowKey(flow), flow, FLOW_LIFETIME_MS);
    return flow.id;
  }

  private async verifyInFlow(
    tenant: Tenant,
    ref: FlowRef,
    methodRef: string,
    input: VerifyInput,
    ctx: RequestContext,
  ): Promise<{ userId: string; amr: string[]; session?: IssuedSession; remembered?: RememberedBrowser }> {
    const { deps } = this;
    const flow = await this.readFlow(tenant, ref);
    const byTap = methodRef === 'tap' && flow.kind !== 'passkey';
    // Everything that needs only the flow is read together: whether the user's sessions were ended since it
    // began, the credentials that can answer, and which part of the account's budget this guess spends.
    const [, candidates, place] = await allInOrder([
      this.refuseIfEnded(tenant, flow),
      byTap
        ? this.requireTapChoice(tenant, flow).then(
            // Stryker disable next-line ArrayDeclaration: equivalent (a pass is checked without credentials: nothing reads this list on that path)
            (): Credential[] => [],
          )
        : flow.kind === 'passkey'
          ? this.passkeyCandidates(tenant, methodRef, input)
          : this.resolveCredentials(tenant, flow, methodRef),
      flow.kind === 'second-factor'
        ? this.place(tenant, 'second-factor', flow.userId, { id: flow.userId, knownBrowsersResetAt: flow.knownBrowsersResetAt ?? null }, ctx)
        : Promise.resolve<Place>('stranger'),
    ] as const);
    const userId = flow.kind === 'passkey' ? (candidates[0]?.userId ?? '') : flow.userId;
    // A passkey assertion cannot be guessed, and the credential id it names is no secret: charging
    // that account for a failed one would let anyone hold its owner back. Only the source pays.
    const account = flow.kind === 'passkey' ? `passkey|${flow.id}` : userId;
    // An app's transaction always spends the strangers' part: an app (or whoever holds its key) must not be
    // able to block the owner's own browser.
    // Stryker disable next-line StringLiteral: equivalent (with a pass, `method` below is undefined whatever type0 says)
    const type0 = byTap ? 'tap' : candidates[0]?.type;
    const method = type0 && !byTap ? deps.methods.get(type0) : undefined;
    // A code typed with spaces ("123 456") is the same code.
    if (input.code !== undefined && method?.wellFormed) input = { ...input, code: input.code.replace(/\s/g, '') };
    // A code that cannot be right on its face (five digits, letters) is no guess: refused before the limits, at no cost.
    if (input.code !== undefined && method?.wellFormed && !method.wellFormed(input.code)) {
      throw new AppError('malformed-code', undefined, { method: type0, attemptsLeft: await this.attemptsLeft(ref) });
    }
    // An app's guesses come from the app, wherever its server is: its per-source limits are the app's own.
    const attempt = this.attempt(tenant, 'second-factor', account, flow.appId !== undefined ? { ...ctx, ip: `app:${flow.appId}` } : ctx, place);
    await deps.limits.begin(attempt);

    const type = byTap ? 'tap' : (candidates[0]?.type ?? 'webauthn');
    const verified = byTap
      ? // Stryker disable next-line StringLiteral: equivalent (a pass is 80 random bits: no other fixed string is one either)
        await this.verifyTap(tenant, userId, input.code ?? '', ctx)
      : candidates.length > 0
        ? await deps.methods.get(type)!.verify(candidates, input, { flowId: flow.id, tenant, requireUserVerification: flow.kind === 'passkey' })
        : undefined;
    // A passkey flow learns its user only now, from the credential.
    const passkeyUser = flow.kind === 'passkey' && userId ? await deps.users.get(tenant.id, userId) : undefined;
    // Stryker disable next-line StringLiteral: equivalent (no user, no username: a flow without a user is never recorded, see `if (userId)` below)
    const recordAs = { ...flow, userId, username: flow.username || (passkeyUser?.username ?? '') };
    if (!verified) {
      // The code this user's app last proved, typed again (the one that just confirmed the app, still on its
      // screen): no attempt is charged, and the person is told to wait for the next code. This opens no
      // guessing channel: the free answer is given for exactly one value per credential, the code of the
      // step it last used, which the store never accepts again (steps only move forward); learning that
      // value gives nothing, since one TOTP value says nothing of another (HMAC is a PRF). Every other wrong
      // code, and so every code that could still be valid, is charged as before.
      const spent = method?.justUsed && input.code !== undefined ? await method.justUsed(candidates, input.code) : undefined;
      if (spent) {
        await deps.limits.refund(attempt);
        throw new AppError('code-already-used', undefined, { nextInSeconds: spent.nextInSeconds, attemptsLeft: await this.attemptsLeft(ref) });
      }
      const failures = await deps.ephemeral.increment(flowFailuresKey(ref), FLOW_LIFETIME_MS);
      const attemptsLeft = Math.max(0, FLOW_MAX_ATTEMPTS - failures);
      // Out of attempts: the flow is gone and the sign-in starts again.
      if (attemptsLeft === 0) await deps.ephemeral.delete(flowKey(ref));
      if (userId) await this.recordFlow(recordAs, ctx, 'failure', 'invalid_code', flow.kind === 'passkey' ? 'passkey' : type);
      throw new AppError('invalid-code', attemptsLeft === 0 ? 'No attempts left; start the sign-in again' : undefined, { attemptsLeft });
    }
    if (flow.kind === 'passkey' && passkeyUser?.status !== 'active') throw new AppError('account-disabled');

    // Taking the flow is the commit point: of two racing correct answers only one gets a session. The limits
    // learn of the right answer at the same time, in the same round trip: a factor proved is a success for the
    // account and the source whichever of the two answers gets the session.
    const [takenRecord] = await Promise.all([deps.ephemeral.take(flowKey(ref)), deps.limits.succeeded(attempt)]);
    const taken = parseRecord(FlowRecord, takenRecord);
    if (!taken) throw new AppError('flow-not-found');
    const amr = flow.kind === 'app-transaction' ? verified.amr : [...new Set([...flow.amr, ...verified.amr, 'mfa'])];
    const withSession = flow.kind !== 'app-transaction';
    const recordedMethod = flow.kind === 'passkey' ? 'passkey' : type;
    const endedMeanwhile = () => this.recordFlow(recordAs, ctx, 'failure', 'sessions_ended', recordedMethod);
    let session: IssuedSession | undefined;
    try {
      // Issued and recorded together, so both rows share one group commit.
      [session] = await Promise.all([
        withSession ? this.issueSession(tenant, userId, 'full', amr, ctx, flow.createdAt, endedMeanwhile) : undefined,
        this.recordFlow(recordAs, ctx, 'success', 'ok', recordedMethod, (verified as Partial<Verified>).credential?.id),
      ]);
    } catch (error) {
      // Refused because the user's sessions were ended meanwhile: this flow is over for good.
      if (error instanceof SessionsEndedMeanwhile) throw error;
      // The database went away during this very write (the node moves to its fallback at its next probe):
      // the flow goes back, so the user's retry finishes this sign-in instead of starting it again. The
      // code just used stays spent; the next one will do. Nobody was answered with a session.
      const left = taken.expiresAt - deps.clock.now();
      if (left > 0) await deps.ephemeral.set(flowKey(ref), taken, left).catch(() => {});
      throw error;
    }
    // The flow knows whether this is a break-glass account: no lookup on the common path.
    const alertFor = passkeyUser ?? (flow.breakGlass ? await deps.users.get(tenant.id, userId) : undefined);
    if (alertFor) await this.alertIfBreakGlass(tenant, alertFor, flow.kind === 'passkey' ? 'passkey' : type);
    // A TAP proves the administrator's trust for now, not this browser's for days.
    const remembered = session && ctx.rememberDevice && !byTap ? await deps.devices.remember(tenant, userId, ctx.userAgent, session.token) : undefined;
    return { userId, amr, ...(session ? { session } : {}), ...(remembered ? { remembered } : {}) };
  }

  /** How many wrong answers a flow has left. */
  private async attemptsLeft(ref: FlowRef): Promise<number> {
    const failures = Number(await this.deps.ephemeral.get(flowFailuresKey(ref)));
    return Math.max(0, FLOW_MAX_ATTEMPTS - (Number.isFinite(failures) ? failures : 0));
  }

  /** A TAP as the second factor: checked, used, and recorded in the audit log. */
  private async verifyTap(tenant: Tenant, userId: string, code: string, ctx: RequestContext): Promise<{ amr: string[] } | undefined> {
    const pass = await this.deps.passes.use(tenant.id, userId, code, ctx);
    if (!pass) return undefined;
    await this.deps.audit.append(tenant.id, {
      actor: `user:${userId}`,
      action: 'tap.used',
      targetUserId: userId,
      details: { as: 'second-factor', passId: pass.id, uses: pass.uses },
    });
    return { amr: ['tap'] };
  }

  private async requireTapChoice(tenant: Tenant, flow: Flow): Promise<void> {
    const choices = await this.choicesFor(tenant, flow.userId);
    if (!choices.some((m) => m.type === 'tap')) throw new AppError('invalid-request', "that method is not one of this sign-in's methods", { methods: choices });
  }

  /** Every sign-in of a break-glass account leaves an audit entry and raises the alert. */
  private async alertIfBreakGlass(tenant: Tenant, user: User, method: string): Promise<void> {
    if (!user.breakGlass) return;
    await this.deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action: 'break-glass.signin',
      targetUserId: user.id,
      details: { username: user.username, method },
    });
    this.deps.onBreakGlass?.(tenant, user);
  }

  private attempt(tenant: Tenant, factor: Attempt['factor'], account: string, ctx: RequestContext, place: Place): Attempt {
    const { accountFailures, blockMinutes } = tenant.policy.lockout;
    return { factor, account: `${tenant.id}|${account}`, ip: ctx.ip, place, accountFailures, accountBlockSeconds: blockMinutes * 60 };
  }

  /**
   * Which part of the account's guessing budget this request spends (see
   * abuse-limits.ts): a browser holding the account's known-browser mark or its
   * remembered-browser token; a source where this factor was proved lately; or,
   * otherwise and always for an app's transaction, a stranger.
   */
  private async place(
    tenant: Tenant,
    factor: 'password' | 'second-factor',
    account: string,
    user: Pick<User, 'id' | 'knownBrowsersResetAt'> | undefined,
    ctx: RequestContext,
  ): Promise<Place> {
    if (user && this.deps.knownBrowsers.recognises(ctx.knownBrowser, tenant.id, user.id, user.knownBrowsersResetAt)) return 'known-browser';
    if (factor === 'password' && user && ctx.rememberedDevice !== undefined && (await this.deps.devices.recognises(tenant, user.id, ctx.rememberedDevice)))
      return 'known-browser';
    if (await this.deps.limits.isFamiliarSource(factor, `${tenant.id}|${account}`, ctx.ip)) return 'familiar-source';
    return 'stranger';
  }

  /** The passkey an assertion names, looked up by its WebAuthn credential id. */
  private async passkeyCandidates(tenant: Tenant, methodRef: string, input: VerifyInput): Promise<Credential[]> {
    if (methodRef !== 'passkey' && methodRef !== 'webauthn') throw new AppError('invalid-request', 'a passkey sign-in is verified with method "passkey"');
    const id = (input.assertion as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string' || id.length === 0 || id.length > 1024) throw new AppError('invalid-request', 'assertion.id is missing');
    const credential = await this.deps.credentials.findByExternalId(tenant.id, id);
    return credential && credential.state === 'active' && credential.type === 'webauthn' && tenant.policy.allowedMethods.includes('webauthn')
      ? [credential]
      : [];
  }

  /**
   * The flow a request names. A flow of another tenant, an app transaction
   * named by a browser or by another app, and a browser's flow named by an app
   * are all answered exactly like an unknown one.
   */
  private async loadFlow(tenant: Tenant, ref: FlowRef): Promise<Flow> {
    const flow = await this.readFlow(tenant, ref);
    await this.refuseIfEnded(tenant, flow);
    return flow;
  }

  /** The flow's record, if this request may name it; not yet checked against its user's ended sessions. */
  private async readFlow(tenant: Tenant, ref: FlowRef): Promise<Flow> {
    const flow = parseRecord(FlowRecord, await this.deps.ephemeral.get(flowKey(ref)));
    const kindFits = ref.appId === undefined ? flow?.kind !== 'app-transaction' : flow?.kind === 'app-transaction' && flow.appId === ref.appId;
    if (!flow || !kindFits || flow.tenantId !== tenant.id || flow.expiresAt <= this.deps.clock.now()) throw new AppError('flow-not-found');
    return flow;
  }

  /** A flow begun before its user's sessions were all ended is over: `flow-not-found`. */
  private async refuseIfEnded(tenant: Tenant, flow: Flow): Promise<void> {
    // Stryker disable next-line ConditionalExpression: equivalent (a flow without a user finds no mark under its key); it saves the read
    if (!flow.userId) return;
    const endedAt = parseRecord(NumberRecord, await this.deps.ephemeral.get(flowsEndedKey(tenant.id, flow.userId)));
    // Stryker disable next-line ConditionalExpression: equivalent (undefined >= a number is false); the check is for the type
    if (endedAt !== undefined && endedAt >= flow.createdAt) throw new AppError('flow-not-found');
  }

  /** A method reference is a credential id or a method type (all of the user's credentials of that type). */
  private async resolveCredentials(tenant: Tenant, flow: Flow, methodRef: string): Promise<Credential[]> {
    const active = await this.deps.credentials.listForUser(tenant.id, flow.userId, 'active');
    const usable = active.filter((c) => this.deps.methods.get(c.type) && tenant.policy.allowedMethods.includes(c.type));
    const byId = usable.filter((c) => c.id === methodRef);
    const found = byId.length > 0 ? byId : usable.filter((c) => c.type === methodRef);
    if (found.length === 0) {
      throw new AppError('invalid-request', "that method is not one of this sign-in's methods", { methods: await this.choicesFor(tenant, flow.userId) });
    }
    return found;
  }

  /**
   * A new session for a sign-in begun at `begunAt`. If all of the user's
   * sessions were ended since (an administrator's reset or "end sessions",
   * "this wasn't me"), the session just written is ended too and the sign-in
   * refused: ending sessions marks the time before it ends them
   * (`Sessions.revokeAllForUser`), so a sign-in whose session was written
   * after that always sees the mark here, and one written before it is ended
   * with the rest. `recordRefusal` records the refusal in the sign-in log.
   */
  private async issueSession(
    tenant: Tenant,
    userId: string,
    scope: 'full' | 'register',
    amr: string[],
    ctx: RequestContext,
    begunAt: number,
    recordRefusal: () => Promise<void>,
  ): Promise<IssuedSession> {
    const { token, session } = await this.deps.sessions.create({ tenantId: tenant.id, userId, scope, amr, ip: ctx.ip, userAgent: ctx.userAgent });
    const endedAt = parseRecord(NumberRecord, await this.deps.ephemeral.get(flowsEndedKey(tenant.id, userId)));
    if (endedAt !== undefined && endedAt >= begunAt) {
      await this.deps.sessions.revoke(session);
      // The success was recorded with the session (one group commit); the log says it was ended at once.
      await recordRefusal();
      throw new SessionsEndedMeanwhile();
    }
    return { token, expiresAt: new Date(session.expiresAt).toISOString(), userId };
  }

  private rehashInBackground(user: UserWithSecret, password: string): void {
    const previous = user.passwordHash;
    if (!previous || !this.deps.hasher.needsRehash(previous)) return;
    void this.deps.hasher
      .hash(password)
      .then((hash) => this.deps.users.rehashPassword(user.tenantId, user.id, previous, hash))
      .catch((err: unknown) => this.deps.onBackgroundError?.(err, 'password rehash'));
  }

  private record(
    tenant: Tenant,
    user: UserWithSecret | undefined,
    username: string,
    ctx: RequestContext,
    step: 'password' | 'second-factor',
    outcome: 'success' | 'failure',
    reason: SigninReason,
    method?: string,
  ): Promise<void> {
    return this.deps.events.record({
      tenantId: tenant.id,
      userId: user?.id ?? null,
      username,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      app: ctx.app,
      step,
      outcome,
      reason,
      method,
    });
  }

  private recordFlow(
    flow: Flow,
    ctx: RequestContext,
    outcome: 'success' | 'failure',
    reason: SigninReason,
    method: string,
    credentialId?: string,
  ): Promise<void> {
    return this.deps.events.record({
      credentialId,
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
