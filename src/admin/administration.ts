import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import type { Tenant, Tenants } from '../directory/tenants.ts';
import type { User, Users } from '../directory/users.ts';
import type { PasswordHasher } from '../directory/password-hasher.ts';
import type { TenantPolicy } from '../directory/policy.ts';
import type { ConfigRollouts } from '../config/config-rollouts.ts';
import { tenantScope, type ConfigVersion } from '../config/config-versions.ts';
import type { Apps, NewApp } from '../directory/apps.ts';
import type { Sessions, ActiveSession } from '../sessions/sessions.ts';
import { passMinutes, type AccessPass, type AccessPasses } from '../methods/tap/access-passes.ts';
import type { MethodManagement, MethodView } from '../methods/method-management.ts';
import type { AuditLog, AuditEntry } from '../activity/audit-log.ts';
import type { AdminSigninEvent, Page, SigninEvents, SigninFilter } from '../activity/signin-events.ts';
import type { ExportFormat } from '../activity/signin-export-format.ts';
import { AppError } from '../errors/app-error.ts';
import { endSessionsAndRemoveMethods } from '../sessions/end-sessions-and-remove-methods.ts';
import { validateNewPassword } from '../directory/password-rules.ts';
import { isTokenActor, tokenActor, tokenIdOf, type AdminTokens, type AdminTokenView } from '../directory/admin-tokens.ts';

/** Who acts: `admin-token:{id}` (the API), `user:{id}` (an administrator in the console) or `cli`. */
export type Actor = string;

/**
 * An administrator's powers come only from a person (signed in with a second
 * factor) or the operator's command line, never from an admin API token: a
 * token, leaked or not, that could make an administrator, or take over one's
 * way in (their password, a pass for them, a reset of their methods, enabling
 * a disabled one), could sign in as one and mint tokens of its own, and so
 * outlive its own revocation. So administrators' and break-glass accounts are
 * out of a token's reach altogether: demoted first, one would be an ordinary
 * account to take over, and disabled, deleted or demoted they would be locked out.
 */
export function refuseTokenFor(actor: Actor, what: string): void {
  if (isTokenActor(actor)) throw new AppError('forbidden', `${what} needs an administrator signed in with a second factor, not a token`);
}

/** Refuses a token any change to an administrator's or break-glass account. */
function refuseTokenOn(actor: Actor, user: User, what: string): void {
  if (user.isAdmin || user.breakGlass) refuseTokenFor(actor, `${what} of an administrator or break-glass account`);
}

export interface UserDetail {
  user: User;
  hasPassword: boolean;
  methods: MethodView[];
  sessions: ActiveSession[];
  accessPass: AccessPass | null;
  recentSignins: AdminSigninEvent[];
}

/** How long a Temporary Access Pass lasts (within the policy's bounds) and whether it signs in once only. */
export interface PassOptions {
  minutes?: number | undefined;
  oneTime?: boolean | undefined;
}

/** A Temporary Access Pass just issued: its code is shown this once. */
export interface IssuedPass {
  code: string;
  expiresAt: string;
  oneTime: boolean;
}

export interface UserInput {
  username?: string | undefined;
  password?: string | undefined;
  email?: string | null | undefined;
  phone?: string | null | undefined;
  status?: 'active' | 'disabled' | undefined;
  admin?: boolean | undefined;
  breakGlass?: boolean | undefined;
}

export interface AdministrationDeps {
  db: Db;
  clock: Clock;
  tenants: Tenants;
  users: Users;
  hasher: PasswordHasher;
  sessions: Sessions;
  passes: AccessPasses;
  management: MethodManagement;
  events: SigninEvents;
  audit: AuditLog;
  apps: Apps;
  tokens: AdminTokens;
  rollouts: Pick<ConfigRollouts, 'applyPolicy' | 'status'>;
  /** An account's email address changed: the address it had is told (the new one may be whoever changed it). */
  onAddressChanged?: (tenantId: string, former: string, entry: AuditEntry) => void;
}

/**
 * What an administrator does to a tenant: users, their methods and sessions,
 * Temporary Access Passes, the policy and apps. Every change leaves an audit
 * entry naming the actor. Every lookup is scoped by the tenant, so another
 * tenant's ids are simply not found.
 */
export class Administration {
  constructor(private readonly deps: AdministrationDeps) {}

  async createUser(tenant: Tenant, actor: Actor, input: UserInput): Promise<User> {
    if (input.admin || input.breakGlass) refuseTokenFor(actor, 'creating an administrator or a break-glass account');
    const passwordHash = input.password !== undefined ? await this.hashNewPassword(input.username ?? '', input.password) : undefined;
    const user = await this.deps.users.create(tenant.id, {
      username: input.username ?? '',
      email: input.email ?? undefined,
      phone: input.phone ?? undefined,
      passwordHash,
      isAdmin: input.admin,
      breakGlass: input.breakGlass,
      byToken: isTokenActor(actor) ? tokenIdOf(actor) : undefined,
    });
    await this.audit(tenant, actor, 'user.created', user.id, {
      username: user.username,
      withPassword: passwordHash !== undefined,
      admin: user.isAdmin,
      breakGlass: user.breakGlass,
    });
    await this.refuseIfTokenRevokedMeanwhile(tenant, actor, user.id, user.createdAt);
    return user;
  }

  searchUsers(tenant: Tenant, query: string, limit: number, after?: string): Promise<User[]> {
    return this.deps.users.search(tenant.id, query, limit, after);
  }

  async user(tenant: Tenant, id: string): Promise<User> {
    const user = await this.deps.users.get(tenant.id, id);
    if (!user) throw new AppError('not-found', 'no such user');
    return user;
  }

  async userDetail(tenant: Tenant, id: string): Promise<UserDetail> {
    const user = await this.user(tenant, id);
    const [withSecret, methods, sessions, accessPass, recent] = await Promise.all([
      this.deps.users.findByUsername(tenant.id, user.username),
      this.deps.management.list(tenant, user),
      this.deps.sessions.listActive(tenant.id, user.id),
      this.deps.passes.active(tenant.id, user.id),
      this.deps.events.list(tenant.id, { userId: user.id }, 10),
    ]);
    return { user, hasPassword: Boolean(withSecret?.passwordHash), methods, sessions, accessPass: accessPass ?? null, recentSignins: recent.items };
  }

  async updateUser(tenant: Tenant, actor: Actor, id: string, input: UserInput): Promise<User> {
    const before = await this.user(tenant, id);
    if (input.username !== undefined) throw new AppError('invalid-request', 'a username cannot be changed; create a new user');
    refuseTokenOn(actor, before, 'a change');
    if (input.admin === true || input.breakGlass === true) refuseTokenFor(actor, 'making an administrator or a break-glass account');
    // A disabled account is one an administrator shut: enabled again, it takes back whatever way in it had (a
    // departed user's password and authenticator), which revoking a leaked token could not shut again.
    if (input.status === 'active' && before.status !== 'active') refuseTokenFor(actor, 'enabling a disabled account');
    if ((input.admin === true && !before.isAdmin) || (input.breakGlass === true && !before.breakGlass)) await this.refuseTokenMadeAccount(tenant, id);
    // Checked before anything is written: a request refused for its password changes nothing (and so leaves no
    // change unrecorded in the audit log).
    const passwordHash = input.password !== undefined ? await this.hashNewPassword(before.username, input.password) : undefined;
    const touchedAt = this.deps.clock.now();
    await this.markIfToken(tenant, actor, id, 'a change');
    const updated = await this.deps.users.update(tenant.id, id, {
      email: input.email,
      phone: input.phone,
      status: input.status,
      isAdmin: input.admin,
      breakGlass: input.breakGlass,
    });
    // Not updated though it was found: a token marked it between the check above and this promotion.
    if (!updated) await this.refuseTokenMadeAccount(tenant, id);
    if (passwordHash !== undefined) await this.deps.users.setPasswordHash(tenant.id, id, passwordHash);
    // Tokens a person made act with that person's authority: it ends with it (and with their sessions,
    // below; revoked here first so this entry counts them).
    const tokensRevoked =
      input.status === 'disabled' || input.admin === false || input.password !== undefined ? await this.endTokensMadeBy(tenant, actor, id) : 0;
    // A disabled account or a password set by the administrator ends every session. So does a promotion: the
    // new powers go to whoever signs in next, with a second factor, not to a session opened before (a stolen
    // one, or a browser left signed in somewhere).
    const promoted = (input.admin === true && !before.isAdmin) || (input.breakGlass === true && !before.breakGlass);
    const sessionsEnded =
      input.status === 'disabled' || input.password !== undefined || promoted ? await this.deps.sessions.revokeAllForUser(tenant.id, id) : 0;
    const fields = Object.entries(input)
      .filter(([, v]) => v !== undefined)
      .map(([k]) => k);
    const entry = await this.audit(tenant, actor, 'user.updated', id, {
      fields,
      ...(input.status && input.status !== before.status ? { status: input.status } : {}),
      ...(tokensRevoked > 0 ? { tokensRevoked } : {}),
      ...(sessionsEnded > 0 ? { sessionsEnded } : {}),
    });
    if (input.email !== undefined && before.email && input.email?.toLowerCase() !== before.email.toLowerCase()) {
      this.deps.onAddressChanged?.(tenant.id, before.email, entry);
    }
    await this.refuseIfTokenRevokedMeanwhile(tenant, actor, id, touchedAt);
    return this.user(tenant, id);
  }

  /**
   * An account an API token created, changed or gave a pass is not made an administrator, by anyone: whoever
   * held the token may hold its way in (the pass, a password it set, a method registered with them) and would
   * become an administrator with it, the token long revoked. Such an administrator is created afresh.
   */
  private async refuseTokenMadeAccount(tenant: Tenant, id: string): Promise<void> {
    if (await this.deps.users.wasTokenTouched(tenant.id, id))
      throw new AppError(
        'forbidden',
        'this account was created or changed through an API token, which may hold its way in; create the administrator as a new account (by a person or the command line)',
      );
  }

  async deleteUser(tenant: Tenant, actor: Actor, id: string): Promise<void> {
    const user = await this.user(tenant, id);
    refuseTokenOn(actor, user, 'deleting');
    // A token's delete marks the account first, as its other changes do: a promotion racing it is then refused,
    // or, landed first, refuses the delete before anything of the account is ended.
    await this.markIfToken(tenant, actor, id, 'deleting');
    // The tokens they made end, and what the user's sessions gave apps (OIDC grants, refresh tokens), first.
    const tokensRevoked = await this.endTokensMadeBy(tenant, actor, id);
    await this.deps.sessions.revokeAllForUser(tenant.id, id);
    // (A token's delete cannot meet a promotion here: the mark above refused the one, or refuses the other.)
    if (!(await this.deps.users.delete(tenant.id, id))) throw new AppError('not-found', 'no such user');
    await this.audit(tenant, actor, 'user.deleted', id, { username: user.username, ...(tokensRevoked > 0 ? { tokensRevoked } : {}) });
  }

  /**
   * Removes every method and ends every session; the next sign-in must register a method, and the password as it
   * stands registers none (someone else may know it: signin/password-registers.ts). With `pass`, a Temporary Access
   * Pass to register with is issued once the reset is done (the code shown once, as `issuePass` does).
   */
  async resetMethods(
    tenant: Tenant,
    actor: Actor,
    id: string,
    options: { pass?: PassOptions | undefined } = {},
  ): Promise<{ removed: number; sessionsEnded: number; pass?: IssuedPass }> {
    const user = await this.user(tenant, id);
    // With an administrator's password (phished, say), a reset lets whoever holds it register a method of their own.
    refuseTokenOn(actor, user, 'a reset');
    // What would refuse the pass refuses the reset too, before anything is removed: who may issue it to whom, and
    // whether the policy allows it for that long.
    if (options.pass) {
      this.checkPassFor(actor, user);
      passMinutes(tenant, options.pass);
    }
    const touchedAt = this.deps.clock.now();
    await this.markIfToken(tenant, actor, id, 'a reset');
    // First what ending a user's sessions always does (the mark a sign-in finishing meanwhile checks,
    // remembered browsers forgotten, listeners told). Then one transaction that takes the user's row first,
    // as every method added from a session does (guardLiveSession): sessions written since end with the
    // methods, so a set-up racing the reset either commits before it and is removed here, or finds its
    // session ended.
    // A used pass goes with the methods: in the wrong hands it would sign in and register anew. (An unused one,
    // perhaps just issued so that the user can register again, stays.)
    const usedPass = await this.deps.passes.revoke(tenant.id, id, { onlyUsed: true });
    const endedFirst = usedPass
      ? await this.takeBackUsedPass(tenant, actor, id, usedPass, 'methods-reset')
      : await this.deps.sessions.revokeAllForUser(tenant.id, id);
    const now = this.deps.clock.now();
    const { removed, ended } = await this.deps.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('users')
        .set({ must_register: 1, methods_reset_at: now, updated_at: now })
        .where('tenant_id', '=', tenant.id)
        .where('id', '=', id)
        .execute();
      return endSessionsAndRemoveMethods(trx, tenant.id, id, now);
    });
    const sessionsEnded = endedFirst + ended;
    await this.audit(tenant, actor, 'methods.reset', id, { removed, sessionsEnded });
    await this.refuseIfTokenRevokedMeanwhile(tenant, actor, id, touchedAt);
    if (!options.pass) return { removed, sessionsEnded };
    return { removed, sessionsEnded, pass: await this.issuePass(tenant, actor, id, options.pass) };
  }

  async revokeSessions(tenant: Tenant, actor: Actor, id: string): Promise<number> {
    refuseTokenOn(actor, await this.user(tenant, id), 'ending the sessions');
    const usedPass = await this.deps.passes.revoke(tenant.id, id, { onlyUsed: true });
    const ended = usedPass
      ? await this.takeBackUsedPass(tenant, actor, id, usedPass, 'sessions-ended')
      : await this.deps.sessions.revokeAllForUser(tenant.id, id);
    await this.audit(tenant, actor, 'sessions.revoked', id, { sessionsEnded: ended });
    return ended;
  }

  async issuePass(tenant: Tenant, actor: Actor, id: string, options: PassOptions): Promise<IssuedPass> {
    const user = await this.user(tenant, id);
    this.checkPassFor(actor, user);
    const touchedAt = this.deps.clock.now();
    await this.markIfToken(tenant, actor, id, 'a Temporary Access Pass');
    // The new pass replaces the active one; if that one was used (up to the moment it was replaced, as the
    // replacing statement reads it), what it gave is taken back.
    const { pass, code, replaced } = await this.deps.passes.issue(tenant, id, options, actor);
    if (replaced?.used) await this.takeBackUsedPass(tenant, actor, id, replaced, 'replaced');
    // The audit entry says when and how long, never the code.
    await this.audit(tenant, actor, 'tap.issued', id, { passId: pass.id, oneTime: pass.oneTime, expiresAt: new Date(pass.expiresAt).toISOString() });
    // (A token revoked meanwhile: the pass goes, its code never shown.)
    await this.refuseIfTokenRevokedMeanwhile(tenant, actor, id, touchedAt);
    return { code, expiresAt: new Date(pass.expiresAt).toISOString(), oneTime: pass.oneTime };
  }

  /** Refuses a pass this actor may not issue to this user. */
  private checkPassFor(actor: Actor, user: User): void {
    // A pass of one's own outlives every remedy of the account's owner (a report, a new password, signing out): with
    // an administrator's session taken over once, it would be the way back in. Another administrator, or the
    // command line, issues it.
    if (actor === `user:${user.id}`) throw new AppError('forbidden', 'a Temporary Access Pass for your own account comes from another administrator');
    if (user.status !== 'active') throw new AppError('invalid-state', 'the account is disabled; enable it first');
    refuseTokenOn(actor, user, 'a Temporary Access Pass');
  }

  async revokePass(tenant: Tenant, actor: Actor, id: string): Promise<void> {
    refuseTokenOn(actor, await this.user(tenant, id), 'revoking the pass');
    const pass = await this.deps.passes.revoke(tenant.id, id);
    if (!pass) throw new AppError('not-found', 'this user has no active Temporary Access Pass');
    if (!pass.used) {
      await this.audit(tenant, actor, 'tap.revoked', id, { used: false, sessionsEnded: 0 });
      return;
    }
    await this.takeBackUsedPass(tenant, actor, id, pass, 'revoked');
  }

  /**
   * Revoking a pass given in error must take back what it gave, and a used pass gave more than its sessions:
   * an app's tokens and an admin token made in them, a remembered browser. So it ends everything the user's
   * sessions gave, as "this wasn't me" does (the user signs in again). What was set up with it stays, and the
   * log says what: if the pass reached someone else, the administrator resets the user's methods. The same
   * holds for a used pass replaced by a new one, or taken away by a reset or by ending the user's sessions
   * (a multi-use pass in someone else's hands would otherwise sign them in again at once).
   */
  private async takeBackUsedPass(
    tenant: Tenant,
    actor: Actor,
    id: string,
    pass: { createdAt: number },
    why: 'revoked' | 'replaced' | 'methods-reset' | 'sessions-ended' | 'token-revoked',
  ): Promise<number> {
    const sessionsEnded = await this.deps.sessions.revokeAllForUser(tenant.id, id);
    const added = await this.deps.db
      .selectFrom('credentials')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenant_id', '=', tenant.id)
      .where('user_id', '=', id)
      .where('state', '=', 'active')
      .where('created_at', '>=', pass.createdAt)
      .executeTakeFirstOrThrow();
    await this.audit(tenant, actor, 'tap.revoked', id, {
      used: true,
      sessionsEnded,
      methodsAddedSince: Number(added.n),
      ...(why === 'revoked' ? {} : { why }),
    });
    return sessionsEnded;
  }

  signins(tenant: Tenant, filter: SigninFilter, limit: number, cursor?: string): Promise<Page<AdminSigninEvent>> {
    return this.deps.events.list(tenant.id, filter, limit, cursor);
  }

  /**
   * The whole filtered log as CSV or NDJSON text, a page at a time, pulled by
   * the caller, who gives the export slot back (`release`) when done. Throws
   * `unavailable` when the node streams as many exports as it will.
   */
  exportSignins(tenant: Tenant, filter: SigninFilter, format: ExportFormat): { chunks: AsyncGenerator<Buffer>; release: () => void } {
    const release = this.deps.events.takeExportSlot();
    return { chunks: this.deps.events.export(tenant.id, filter, format), release };
  }

  auditLog(
    tenant: Tenant,
    options: { limit: number; before?: number | undefined; userId?: string | undefined; action?: string | undefined },
  ): Promise<AuditEntry[]> {
    return this.deps.audit.list(tenant.id, options);
  }

  /**
   * A new policy for everyone at once, as a policy version (validated in
   * full, with its diff, audited as `policy.changed`); refused with
   * `canary-in-progress` while a version of the tenant's policy is on its canary.
   */
  async setPolicy(tenant: Tenant, actor: Actor, input: unknown): Promise<TenantPolicy> {
    const version = await this.deps.rollouts.applyPolicy(tenant, input, { actor });
    return version.document as TenantPolicy;
  }

  /**
   * How many users have sign-in methods but none of these types: under a policy allowing only these, they have no
   * usable method and sign in with a Temporary Access Pass only (SigninService, the tenant's fail mode). The policy
   * page says so when a change strands anyone.
   */
  async strandedBy(tenant: Tenant, allowedMethods: readonly string[]): Promise<number> {
    const row = await this.strandedQuery(tenant, allowedMethods)
      .select((eb) => eb.fn.count<number>('u.id').as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** The users `strandedBy` counts, the first `limit` by username, with the count of all: whom to issue a pass to. */
  async strandedUsers(tenant: Tenant, allowedMethods: readonly string[], limit: number): Promise<{ count: number; users: { id: string; username: string }[] }> {
    const [count, users] = await Promise.all([
      this.strandedBy(tenant, allowedMethods),
      this.strandedQuery(tenant, allowedMethods).select(['u.id', 'u.username']).orderBy('u.username').limit(limit).execute(),
    ]);
    return { count, users };
  }

  /** Active users of the tenant with an active method but none of an allowed type. */
  private strandedQuery(tenant: Tenant, allowedMethods: readonly string[]) {
    // An empty list matches no type (`in ()` is not SQL).
    const allowed = allowedMethods.length > 0 ? [...allowedMethods] : [''];
    return this.deps.db
      .selectFrom('users as u')
      .where('u.tenant_id', '=', tenant.id)
      .where('u.status', '=', 'active')
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('credentials as c').select('c.id').where('c.tenant_id', '=', tenant.id).whereRef('c.user_id', '=', 'u.id').where('c.state', '=', 'active'),
        ),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('credentials as k')
              .select('k.id')
              .where('k.tenant_id', '=', tenant.id)
              .whereRef('k.user_id', '=', 'u.id')
              .where('k.state', '=', 'active')
              .where('k.type', 'in', allowed),
          ),
        ),
      );
  }

  /** The version of the tenant's policy on its canary now, if any: the policy page says so before anyone types a change it would refuse. */
  async policyCanary(tenant: Tenant): Promise<ConfigVersion | undefined> {
    return (await this.deps.rollouts.status(tenantScope(tenant.id))).canary;
  }

  async createApp(tenant: Tenant, actor: Actor, input: NewApp) {
    // An app is tenant-wide: a first-party one signs every user in without asking (administrators included) and
    // sends their tokens where it says; an API key checks anyone's codes without a password and lives on after
    // the token that made it. A person's to make, or the command line's.
    refuseTokenFor(actor, 'creating an app');
    const created = await this.deps.apps.create(tenant.id, input);
    await this.audit(tenant, actor, 'app.created', null, { appId: created.app.id, name: created.app.name, kind: created.app.kind });
    return created;
  }

  listApps(tenant: Tenant) {
    return this.deps.apps.list(tenant.id);
  }

  async deleteApp(tenant: Tenant, actor: Actor, id: string): Promise<void> {
    // The apps users sign in to are not a token's to take away either.
    refuseTokenFor(actor, 'deleting an app');
    if (!(await this.deps.apps.revoke(tenant.id, id))) throw new AppError('not-found', 'no such app');
    await this.audit(tenant, actor, 'app.deleted', null, { appId: id });
  }

  /** A new admin API token, shown once; who made it and when it expires go in the audit log. */
  async createToken(tenant: Tenant, actor: Actor, options: { name?: string | undefined; days?: number | undefined }) {
    const created = await this.deps.tokens.create(tenant.id, 'admin', { ...options, createdBy: actor });
    await this.audit(tenant, actor, 'token.created', null, { tokenId: created.id, name: options.name ?? null, expiresAt: created.expiresAt });
    return created;
  }

  listTokens(tenant: Tenant): Promise<AdminTokenView[]> {
    return this.deps.tokens.list(tenant.id);
  }

  async revokeToken(tenant: Tenant, actor: Actor, id: string): Promise<void> {
    // A token may end itself; another token (an administrator's own, say) only a person or the command line ends.
    // (Looked up first: an id of another tenant's token, or of none, is answered alike.)
    if (isTokenActor(actor) && actor !== tokenActor(id)) {
      if (!(await this.deps.tokens.list(tenant.id)).some((t) => t.id === id && t.revokedAt === null)) throw new AppError('not-found', 'no such live token');
      refuseTokenFor(actor, 'revoking another token');
    }
    // A token revoked with its maker's authority (`endTokensMadeBy`) took back its passes only and keeps the
    // accounts it touched: revoked again, as leaked, it takes them back. Any other token not live is not found.
    const revokedNow = await this.deps.tokens.revoke(tenant.id, id);
    const touched = await this.deps.users.touchedBy(tenant.id, id);
    if (!revokedNow && touched.length === 0) throw new AppError('not-found', 'no such live token');
    const { passesRevoked, accountsTakenBack } = await this.takeBackWhatTokenGave(tenant, actor, id, touched);
    await this.audit(tenant, actor, 'token.revoked', null, {
      tokenId: id,
      ...(revokedNow ? {} : { revokedBefore: true }),
      ...(passesRevoked > 0 ? { passesRevoked } : {}),
      ...(accountsTakenBack > 0 ? { accountsTakenBack } : {}),
    });
  }

  /**
   * Revokes the tokens a user made (they act with the user's authority, which has just ended: disabled, demoted,
   * deleted, a new password, or every session ended) and takes back their passes. How many. The accounts the
   * tokens touched are not taken back, as those the person changed in the console are not: nothing says the
   * tokens leaked, and an administrator's departure must not undo every account their provisioning made. Their
   * touches are kept, so that revoking such a token as leaked (`revokeToken`, even now) still takes them back:
   * an administrator who suspects a leak often changes their own password first, which lands here.
   */
  async endTokensMadeBy(tenant: Tenant, actor: Actor, userId: string): Promise<number> {
    const ids = await this.deps.tokens.revokeCreatedBy(tenant.id, `user:${userId}`);
    for (const id of ids) await this.takeBackPassesOf(tenant, actor, id);
    return ids.length;
  }

  /**
   * A token is revoked because it leaked, most often, and its holder may hold a way into every account it
   * touched: the passes it issued, a password it set, a reset after which they registered a method of their
   * own (and changed the password with it), an address the codes go to. So the passes go (`takeBackPassesOf`),
   * and on each account it touched, everything set up since the token first did: its sessions end with all
   * they gave (apps' grants, remembered browsers), methods added since are removed (the user registers again),
   * and a password set since is cleared (the user gets a new one, or a pass, from an administrator). What was
   * there before stays. A token retired by plan is left to expire instead: expiry takes nothing back.
   */
  private async takeBackWhatTokenGave(
    tenant: Tenant,
    actor: Actor,
    tokenId: string,
    touched: { userId: string; since: number }[],
  ): Promise<{ passesRevoked: number; accountsTakenBack: number }> {
    const passesRevoked = await this.takeBackPassesOf(tenant, actor, tokenId);
    for (const { userId, since } of touched) await this.takeBackAccount(tenant, actor, tokenId, userId, since);
    await this.deps.users.forgetTouchesOf(tenant.id, tokenId);
    return { passesRevoked, accountsTakenBack: touched.length };
  }

  /**
   * A token revoked while its request ran: the revocation took back what it found, perhaps before this change
   * was written (a password the holder now knows, a reset they will register after, a pass) or its touch noted.
   * The token's passes go, this request's change on the account is taken back, and the request refused. The
   * token's touch of the account stays: revoked by plan (`endTokensMadeBy`), it may yet be revoked as leaked,
   * and that takes back everything since its first touch. Every change a token makes to an account ends here.
   */
  private async refuseIfTokenRevokedMeanwhile(tenant: Tenant, actor: Actor, userId: string, since: number): Promise<void> {
    if (!isTokenActor(actor)) return;
    const tokenId = tokenIdOf(actor);
    if (!(await this.deps.tokens.isRevoked(tenant.id, tokenId))) return;
    await this.deps.passes.revokeIssuedBy(tenant.id, actor);
    await this.takeBackAccount(tenant, actor, tokenId, userId, since);
    throw new AppError('unauthenticated', 'this admin token was revoked');
  }

  private async takeBackAccount(tenant: Tenant, actor: Actor, tokenId: string, userId: string, since: number): Promise<void> {
    // As a reset does: first what ending the sessions always does, then one transaction that takes the user's row
    // first, so a set-up racing it either commits before and is removed, or finds its session ended.
    const endedFirst = await this.deps.sessions.revokeAllForUser(tenant.id, userId);
    const now = this.deps.clock.now();
    const {
      removed: methodsRemoved,
      passwordCleared,
      ended,
    } = await this.deps.db.transaction().execute(async (trx) => {
      // The row is taken whatever the password's date: a password change in flight waits for this transaction,
      // then finds its session ended (guardLiveSession), or landed before and is cleared here.
      await trx.updateTable('users').set({ updated_at: now }).where('tenant_id', '=', tenant.id).where('id', '=', userId).execute();
      const cleared = await trx
        .updateTable('users')
        .set({ password_hash: null, updated_at: now })
        .where('tenant_id', '=', tenant.id)
        .where('id', '=', userId)
        .where('password_changed_at', '>=', since)
        .executeTakeFirst();
      const { removed, ended } = await endSessionsAndRemoveMethods(trx, tenant.id, userId, now, { since });
      if (removed > 0) await trx.updateTable('users').set({ must_register: 1 }).where('tenant_id', '=', tenant.id).where('id', '=', userId).execute();
      return { removed, passwordCleared: Number(cleared.numUpdatedRows) === 1, ended };
    });
    // And once more, now that the password and methods are gone: a sign-in that passed the first end's mark
    // (begun after it, with the password and a method not yet removed) cannot keep the session it was issued.
    const endedAfter = await this.deps.sessions.revokeAllForUser(tenant.id, userId);
    // The addresses the token set go too: notices (and apps' email claims) would keep going to its holder.
    const contactCleared = await this.contactSetBy(tenant, tokenId, userId, since);
    if (contactCleared.length > 0) {
      await this.deps.users.update(tenant.id, userId, Object.fromEntries(contactCleared.map((field) => [field, null])));
    }
    await this.audit(tenant, actor, 'access.taken-back', userId, {
      tokenId,
      since: new Date(since).toISOString(),
      sessionsEnded: endedFirst + ended + endedAfter,
      methodsRemoved,
      passwordCleared,
      ...(contactCleared.length > 0 ? { contactCleared } : {}),
    });
  }

  /**
   * The contact fields (email, phone) the token set on the account since `since`, as its audit entries say: every
   * field of an account it created, those named in its changes. What they were before is not kept: the
   * administrator enters the owner's again.
   */
  private async contactSetBy(tenant: Tenant, tokenId: string, userId: string, since: number): Promise<('email' | 'phone')[]> {
    // Every such entry of the token's, however many others came after (twenty-sixth round: 505 cheap entries
    // pushed its address change out of a page of the newest).
    const entries = await this.deps.audit.byActorOn(tenant.id, { actor: tokenActor(tokenId), userId, actions: ['user.created', 'user.updated'], since });
    const fields = new Set(
      entries.flatMap((e) => (e.action === 'user.created' ? ['email', 'phone'] : Array.isArray(e.details.fields) ? e.details.fields : [])),
    );
    const current = await this.deps.users.get(tenant.id, userId);
    return (['email', 'phone'] as const).filter((field) => fields.has(field) && current?.[field]);
  }

  /**
   * A token is revoked because it leaked, most often: the passes it issued go with it (its holder may hold them),
   * and what a used one gave is taken back, as when an administrator revokes the pass. How many were revoked
   * (expired unused ones, revoked as well, are not counted).
   */
  private async takeBackPassesOf(tenant: Tenant, actor: Actor, tokenId: string): Promise<number> {
    const passes = await this.deps.passes.revokeIssuedBy(tenant.id, tokenActor(tokenId));
    for (const pass of passes) {
      if (pass.used) await this.takeBackUsedPass(tenant, actor, pass.userId, pass, 'token-revoked');
      else if (!pass.expired) await this.audit(tenant, actor, 'tap.revoked', pass.userId, { used: false, sessionsEnded: 0, why: 'token-revoked' });
    }
    return passes.filter((p) => p.used || !p.expired).length;
  }

  /**
   * A token's change marks the account first (a mark kept on the user, not read from the audit log, which the
   * retention sweep prunes). A reset by a token counts too: whoever knows the password registers a method of
   * their own at the next sign-in. Refused when the account was made an administrator since it was looked up.
   */
  private async markIfToken(tenant: Tenant, actor: Actor, id: string, what: string): Promise<void> {
    if (!isTokenActor(actor)) return;
    if (!(await this.deps.users.markTokenTouched(tenant.id, id, tokenIdOf(actor)))) refuseTokenFor(actor, `${what} of an administrator or break-glass account`);
  }

  private async hashNewPassword(username: string, password: string): Promise<string> {
    validateNewPassword(username, password);
    return this.deps.hasher.hash(password);
  }

  private audit(
    tenant: Tenant,
    actor: Actor,
    action: Parameters<AuditLog['append']>[1]['action'],
    targetUserId: string | null,
    details: Record<string, unknown>,
  ) {
    return this.deps.audit.append(tenant.id, { actor, action, targetUserId, details });
  }
}
