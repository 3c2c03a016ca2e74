import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { sqlitePath } from '../config/config.ts';
import { systemClock, type Clock } from '../clock.ts';
import { KeyRing } from '../crypto/key-ring.ts';
import { loadOrCreateMasterKeyFile } from '../crypto/master-key-file.ts';
import type { Dialect, MigrationResultSet } from 'kysely';
import { openDurableStore, migrateToLatest, keysAuditChains, type DurableStore } from '../store/durable/database.ts';
import { GroupCommit } from '../store/durable/group-commit.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { MemoryEphemeralStore } from '../store/ephemeral/memory-store.ts';
import { PasswordHasher, type PasswordHasherOptions } from '../directory/password-hasher.ts';
import { Tenants } from '../directory/tenants.ts';
import { Users } from '../directory/users.ts';
import { ProfileSeal } from '../directory/profile-seal.ts';
import { AdminTokens } from '../directory/admin-tokens.ts';
import { PasswordChange } from '../signin/password-change.ts';
import { Credentials } from '../methods/credentials.ts';
import { SingleUseHolds, noHolds } from '../methods/single-use-holds.ts';
import { createMethodRegistry, type MethodRegistry } from '../methods/registry.ts';
import { relyingPartyFrom } from '../methods/webauthn/webauthn-method.ts';
import { MethodManagement } from '../methods/method-management.ts';
import { Sessions } from '../sessions/sessions.ts';
import { SigninEvents } from '../activity/signin-events.ts';
import { ReportReader } from '../activity/report-reader.ts';
import { ExportPacing } from '../activity/export-pacing.ts';
import { SigninActivity } from '../activity/signin-activity.ts';
import { DeliveryHealthLog } from '../delivery/delivery-health-log.ts';
import { readCoverage, registrationCoverageQuery, type RegistrationCoverage } from '../methods/registration-coverage.ts';
import { AbuseLimits, type AbuseLimitsOptions } from '../signin/abuse-limits.ts';
import { SigninService } from '../signin/signin-service.ts';
import { KnownBrowsers } from '../signin/known-browsers.ts';
import { AnonymousStarts } from '../signin/anonymous-starts.ts';
import { AdmissionController, type Admission } from '../admission/admission-controller.ts';
import { Metrics } from '../status/metrics.ts';
import { KeyedHasher } from '../crypto/keyed-hash.ts';
import { Delivery, type DeliveryPort } from '../delivery/delivery.ts';
import type { DeliveryEvents } from '../delivery/provider-chain.ts';
import { OneTimeCodes } from '../methods/out-of-band/one-time-codes.ts';
import { SendLimits } from '../methods/out-of-band/send-limits.ts';
import { AuditLog } from '../activity/audit-log.ts';
import { SecurityNotices } from '../activity/security-notices.ts';
import { SigninReports } from '../activity/signin-report.ts';
import { AccessPasses } from '../methods/tap/access-passes.ts';
import { Apps } from '../directory/apps.ts';
import { Administration } from '../admin/administration.ts';
import { RememberedDevices } from '../sessions/remembered-devices.ts';
import { OidcProviders } from '../oidc/provider-registry.ts';
import { SigningKeys } from '../oidc/signing-keys.ts';
import { oidcPages } from '../oidc/oidc-pages.ts';
import { OidcRevocation } from '../sessions/oidc-revocation.ts';
import { cookieNames } from '../http/cookie-names.ts';
import { RequestAuth } from '../http/authenticate.ts';
import { Sweeper } from '../retention/sweeper.ts';
import { expirySweeps } from '../retention/sweeps.ts';
import nodeCluster from 'node:cluster';
import { FailoverEphemeralStore } from '../store/ephemeral/failover-store.ts';
import { DurableFailover } from '../store/fallback/durable-failover.ts';
import { FallbackDialect } from '../store/fallback/fallback-dialect.ts';
import { OutageJournal } from '../store/fallback/outage-journal.ts';
import { isUnavailable } from '../errors/is-unavailable.ts';
import type { AuditInput } from '../activity/audit-log.ts';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { DurableEphemeralStore } from '../store/ephemeral/durable-ephemeral-store.ts';
import { ClusterMonitor } from '../cluster/cluster-monitor.ts';
import { Membership } from '../cluster/membership.ts';
import { LoadWindow } from '../cluster/load-window.ts';
import { ConfigVersions } from '../config/config-versions.ts';
import { ConfigSecrets } from '../config/config-secrets.ts';
import { ConfigRollouts } from '../config/config-rollouts.ts';
import { RuntimeConfig } from '../config/runtime-config.ts';
import { CanaryGuard } from '../config/canary-guard.ts';
import { CanarySlicer } from '../config/canary-slice.ts';
import { SliceHealth } from '../config/slice-health.ts';
import { newId } from '../crypto/random.ts';
import { SliceTally } from '../config/slice-tally.ts';
import { baselineSettings } from '../config/runtime-settings.ts';
import { Incidents } from '../incidents/incidents.ts';
import { ComponentWatch, type ComponentState } from '../incidents/component-watch.ts';
import { PushChallenges } from '../methods/push/push-challenges.ts';
import { PushLive } from '../methods/push/push-live.ts';
import { VapidKeys } from '../methods/push/vapid-keys.ts';
import { WebPushSender } from '../methods/push/web-push-sender.ts';

/** Everything a node runs on, built in one place (the composition root). */
export interface Services {
  config: Readonly<Config>;
  clock: Clock;
  keyRing: KeyRing;
  durable: DurableStore;
  ephemeral: EphemeralStore;
  hasher: PasswordHasher;
  tenants: Tenants;
  users: Users;
  adminTokens: AdminTokens;
  credentials: Credentials;
  methods: MethodRegistry;
  management: MethodManagement;
  passwords: PasswordChange;
  sessions: Sessions;
  events: SigninEvents;
  /** A tenant's last day of sign-ins, counted (the console's overview). */
  signinActivity: SigninActivity;
  /** A tenant's registration coverage (the console's overview); in the report worker on SQLite. */
  coverage: (tenantId: string) => Promise<RegistrationCoverage>;
  signin: SigninService;
  /** Admission at the door: the lanes of the request's canary slice. */
  admission: Admission;
  metrics: Metrics;
  /** Each delivery provider's last day, an hour at a time (the console's overview). */
  deliveryHealth: DeliveryHealthLog;
  /** Delivery as methods use it: each send goes through the providers of its request's slice. */
  delivery: DeliveryPort;
  /** The runtime configuration this node runs (versions, canaries), taken from the store without restarts. */
  runtime: RuntimeConfig;
  configVersions: ConfigVersions;
  rollouts: ConfigRollouts;
  /** Judges canaries and reads new versions; started by `startNode`, ticked by hand in tests. */
  guard: CanaryGuard;
  incidents: Incidents;
  /** Looks at every component once and opens or closes its automatic incident; `startNode` runs it on a timer. */
  checkComponents(): Promise<{ opened: string[]; closed: string[] }>;
  audit: AuditLog;
  passes: AccessPasses;
  apps: Apps;
  reports: SigninReports;
  admin: Administration;
  signingKeys: SigningKeys;
  oidc: OidcProviders;
  oidcRevocation: OidcRevocation;
  knownBrowsers: KnownBrowsers;
  anonymousStarts: AnonymousStarts;
  /** Who is behind a request (sessions, admin tokens, the session cookie). */
  auth: RequestAuth;
  /** The report worker thread (sign-in log queries and exports). */
  reportReader: ReportReader;
  /** Removes expired records; started by `startNode`, run by hand in tests (`runOnce`). */
  sweeper: Sweeper;
  cluster: ClusterMonitor;
  /** The local fallback of a PostgreSQL cluster member (absent on the embedded store). */
  fallback: DurableFailover | undefined;
  close(): Promise<void>;
}

export interface BuildOptions {
  clock?: Clock;
  logger?: Logger;
  hasher?: PasswordHasherOptions;
  limits?: AbuseLimitsOptions;
  /** Tests: work in this PostgreSQL schema and this Redis key namespace. */
  pgSchema?: string;
  redisNamespace?: string;
  /** A long-running node: SQLite checkpoints move to a worker thread. */
  server?: boolean;
  /** Warn about a freshly generated master key (the CLI and server do). */
  onMasterKeyGenerated?: (path: string) => void;
}

// A node that hashed a password this recently counts as serving sign-ins (exports pause between pages).
const BUSY_WITHIN_MS = 250;

export async function buildServices(config: Readonly<Config>, options: BuildOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const keyRing = new KeyRing(resolveMasterKey(config, options), config.previousMasterKeys);

  // A cluster member on PostgreSQL keeps a local fallback to sign in from while the database is away (issue 12).
  const fallback = config.databaseUrl
    ? new DurableFailover({
        clock,
        keyRing,
        node: config.nodeName,
        snapshotFile: join(config.dataDir, 'fallback-snapshot.sealed'),
        journal: new OutageJournal(join(config.dataDir, 'outage-journal.db'), keyRing, config.nodeName),
        onModeChange: (mode, reason) => {
          const log = mode === 'primary' ? options.logger?.info.bind(options.logger) : options.logger?.error.bind(options.logger);
          log?.(
            { mode, reason },
            mode === 'fallback'
              ? 'the database is unreachable; signing in from the local fallback'
              : mode === 'replaying'
                ? 'the database answers again; replaying the outage journal'
                : 'the outage journal is replayed; back on the database',
          );
        },
        onReplayRejected: (entry, err) =>
          options.logger?.error({ entry: entry.id, at: entry.at, err: { message: err.message } }, 'the database refused a journaled write; set aside'),
        onBackgroundError: (err, what) => options.logger?.warn({ err: { message: err.message } }, `${what} failed`),
        probeDirect: () => probePostgres(config.databaseUrl!),
      })
    : undefined;
  const durable = openDurableStore({
    sqlitePath: sqlitePath(config),
    backgroundCheckpoint: options.server ?? false,
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}),
    ...(fallback ? { wrapDialect: (dialect: Dialect) => new FallbackDialect(dialect, fallback) } : {}),
  });
  let ephemeral: EphemeralStore | undefined;
  let migrated: MigrationResultSet = {};
  let startedInFallback = false;
  try {
    try {
      migrated = await migrateToLatest(durable.primaryDb ?? durable.db, durable.engine);
    } catch (err) {
      // A node (re)started during an outage serves from the sealed snapshot of its last run (item 5).
      if (!fallback || !isUnavailable(err as Error) || !(await fallback.startInFallback(durable.primaryDb!, err))) throw err;
      startedInFallback = true;
      options.logger?.error({ err: { message: (err as Error).message } }, 'the database is unreachable at start; serving sign-ins from the local fallback');
    }
    // Redis's client loads only for a cluster member.
    ephemeral = config.redisUrl
      ? await clusterEphemeralStore(config.redisUrl, options.redisNamespace ?? config.redisNamespace, durable, clock, options.logger)
      : new MemoryEphemeralStore(clock);
  } catch (err) {
    await fallback?.stop();
    await durable.close();
    throw err;
  }

  const db = durable.db;
  const metrics = new Metrics();
  const hasher = new PasswordHasher({ ...config.hashing, events: metrics.hashingEvents(), ...options.hasher });
  const tenants = new Tenants(db, clock);
  const users = new Users(db, clock, new ProfileSeal(keyRing));
  // Contact details written in clear by an older release are sealed before anything reads them.
  if (!startedInFallback) await users.sealContacts({ rewrap: false });
  // Single-use holds and shared sessions while signing in from the outage fallback (issue 12).
  const outage = fallback ? { active: () => fallback.usesFallback(), store: ephemeral } : undefined;
  const holds = outage ? new SingleUseHolds(outage.active, outage.store) : noHolds;
  // One group commit for the hot path's writes: TOTP step claims, sessions, sign-in events.
  const groupCommit = new GroupCommit(db);
  const credentials = new Credentials(db, clock, holds, groupCommit);
  const deliveryHealth = new DeliveryHealthLog({ ephemeral, clock });
  const configVersions = new ConfigVersions(db, clock);
  const secrets = new ConfigSecrets(keyRing);
  const baseline = baselineSettings(config);
  const sliceHealth = new SliceHealth();
  const runtime = await RuntimeConfig.create({
    versions: configVersions,
    secrets,
    baseline,
    slicer: new CanarySlicer(keyRing.deriveKey('canary-slice')),
    health: sliceHealth,
    tenants,
    makeDelivery: (delivery, slice) =>
      new Delivery(delivery.channels, sliceEvents(metrics.deliveryEvents(deliveryHealth.counting(deliveryLog(options.logger))), sliceHealth, slice), () =>
        clock.now(),
      ),
    makeAdmission: (admission) => new AdmissionController(admission, metrics.admissionEvents()),
    // Every version's limiters count in the same keys: a new version changes the caps, not what was sent this hour.
    makeSendLimits: (limits) => new SendLimits(ephemeral!, limits),
    onChange: ({ scope, version, slice }) =>
      options.logger?.info({ scope, version, slice }, slice === 'ended' ? 'configuration canary ended' : `configuration version in use (${slice})`),
    onError: (err, what) => options.logger?.error({ err: { message: (err as Error).message } }, `${what} failed`),
  });
  const delivery = runtime.delivery;
  // Code settings, send limits and countries are read at each use from the runtime configuration
  // (the version of the request's slice), so a new version applies without a restart.
  const code = () => runtime.current().delivery.code;
  const vapidKeys = new VapidKeys(db, keyRing, clock);
  const methods = createMethodRegistry({
    db,
    credentials,
    keyRing,
    clock,
    hasher,
    ephemeral,
    rp: relyingPartyFrom(config.publicUrl),
    delivery,
    codes: new OneTimeCodes(ephemeral, new KeyedHasher(keyRing.deriveKey('one-time-codes')), clock, {
      get digits() {
        return code().digits;
      },
      get lifetimeMs() {
        return code().lifetimeMinutes * 60_000;
      },
      get maxAttempts() {
        return code().maxAttempts;
      },
    }),
    get sendLimits() {
      return runtime.currentSendLimits();
    },
    destinationHasher: new KeyedHasher(keyRing.deriveKey('destinations')),
    publicHost: new URL(config.publicUrl).host,
    get resendCooldownMs() {
      return code().resendCooldownSeconds * 1000;
    },
    get allowedCountries() {
      return runtime.current().delivery.allowedCountries;
    },
    publicUrl: config.publicUrl,
    pushChallenges: new PushChallenges(ephemeral, clock),
    webPush: new WebPushSender({ vapid: () => vapidKeys.get(), subject: config.push.contact, allowedHosts: config.push.services }),
    pushLive: new PushLive(ephemeral),
    // Called only once serving, after `events` and `audit` below exist.
    recordSignin: (event) => events.record(event),
    async onPushReported(tenant, userId, details) {
      await users.flag(tenant.id, userId);
      await audit.append(tenant.id, { actor: `user:${userId}`, action: 'signin.reported', targetUserId: userId, details });
    },
    async onPaired(tenant, userId, device) {
      await audit.append(tenant.id, {
        actor: `user:${userId}`,
        action: 'method.added',
        targetUserId: userId,
        details: { type: 'push', label: device.label, credentialId: device.id, via: 'pairing' },
      });
    },
  });
  const sessions = new Sessions(
    db,
    clock,
    { lifetimeMs: config.sessions.lifetimeMinutes * 60_000, idleMs: config.sessions.idleMinutes * 60_000 },
    groupCommit,
    outage,
  );
  // Reports (admin log pages on SQLite, every export) run in a worker thread on their own connection.
  const reports = new ReportReader(
    {
      engine: durable.engine,
      sqlitePath: sqlitePath(config),
      ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
      ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}),
    },
    {
      // Exports yield to requests: the node is busy while any request is admitted (an export gives its slot back
      // once it streams) or any password is being hashed (a canary's requests are in other lanes, not their hashes).
      pacing: new ExportPacing({ busy: () => runtime.admission.state.inFlight > 0 || hasher.pool.idleForMs < BUSY_WITHIN_MS }),
    },
  );
  const events = new SigninEvents(db, clock, config.nodeName, groupCommit, { reader: reports, lists: durable.engine === 'sqlite' });
  const signinActivity = new SigninActivity({ db, clock, reports: { reader: reports, lists: durable.engine === 'sqlite' } });
  events.onRecord((e) => runtime.observeSignin(e.tenantId, e.step, e.outcome, e.reason));
  const limits = new AbuseLimits(ephemeral, options.limits);
  const adminTokens = new AdminTokens(db, clock);
  const anonymousStarts = new AnonymousStarts(ephemeral);
  const knownBrowsers = new KnownBrowsers(keyRing.deriveKey('known-browsers'), clock);
  const audit = new AuditLog(db, durable.engine, clock, keyRing, {
    // Shipped logs anchor the chain's end: cutting entries off the end of a chain shows against them.
    onAppended: (head) => options.logger?.info({ tenantId: head.tenantId, auditSeq: head.seq, auditHash: head.hash }, 'audit chain head'),
    ...(fallback
      ? {
          deferred: {
            active: () => fallback.usesFallback(),
            write: (tenantId: string, input: AuditInput, at: number) =>
              fallback.journalWrites([{ kind: 'audit', tenantId, entry: { ...input, details: { ...input.details, duringOutage: true, at } } }]),
          },
        }
      : {}),
  });
  if (fallback && durable.primaryDb) {
    // Replayed entries join the chain through the database itself, never the fallback.
    const replayAudit = new AuditLog(durable.primaryDb, durable.engine, clock, keyRing);
    fallback.onReplayAudit(async (tenantId, entry) => void (await replayAudit.append(tenantId, entry as unknown as AuditInput)));
  }
  if (keysAuditChains(migrated)) await audit.keyLegacyChains();
  const noticeAddresses = new KeyedHasher(keyRing.deriveKey('notice-addresses'));
  const notices = new SecurityNotices({
    users,
    tenants,
    delivery,
    ephemeral,
    addressKey: (address) => noticeAddresses.hash(address),
    onOutcome: (outcome, action) => {
      if (outcome !== 'not-noticed') metrics.securityNotices.inc({ action, outcome });
    },
    onError: (err, what, notice) => options.logger?.warn({ err: { message: (err as Error).message }, notice }, `${what} not sent`),
    // Said once, with each notice's audit entry, so whoever runs the node can tell those users another way.
    onLost: (lost) => options.logger?.warn({ lost }, `${lost.length} security notices were not sent: the node stopped before their turn`),
  });
  audit.onEntry((tenantId, entry) => notices.consider(tenantId, entry));
  metrics.watchNotices(notices);
  const passes = new AccessPasses(db, clock, hasher, holds);
  const apps = new Apps(db, clock, keyRing);
  const management = new MethodManagement({ credentials, methods, sessions, db, clock, audit, ephemeral });
  const signin = new SigninService({
    clock,
    ephemeral,
    users,
    hasher,
    credentials,
    methods,
    sessions,
    events,
    limits,
    passes,
    audit,
    devices: new RememberedDevices(db, clock),
    knownBrowsers,
    anonymousStarts,
    onBreakGlass: (tenant, user) => {
      metrics.breakGlassSignins.inc({ tenant: tenant.slug });
      options.logger?.error({ tenant: tenant.slug, user: user.username, alert: 'break-glass' }, 'break-glass account signed in');
    },
    onBackgroundError: (err, what) => options.logger?.error({ err: { message: (err as Error).message } }, `${what} failed`),
  });

  metrics.watchDelivery(delivery);
  const admission = runtime.admission;
  metrics.watch(admission, hasher);
  const incidents = new Incidents(db, clock);
  const componentWatch = new ComponentWatch(incidents, clock);
  const probe = async (ping: () => Promise<void>): Promise<ComponentState> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), 1000);
    });
    try {
      await Promise.race([ping(), timeout]);
      return 'up';
    } catch {
      return 'down';
    } finally {
      clearTimeout(timer);
    }
  };
  const checkComponents = async () => {
    const [durableState, ephemeralState] = await Promise.all([probe(() => durable.ping()), probe(() => ephemeral!.ping())]);
    const channels = Object.fromEntries(Object.entries(delivery.health()).map(([channel, health]) => [channel, health.state]));
    return componentWatch.check({ durable: durableState, ephemeral: ephemeralState, ...channels });
  };
  const rollouts = new ConfigRollouts({ versions: configVersions, secrets, baseline, tenants, audit });
  const guard = new CanaryGuard({
    runtime,
    rollouts,
    health: sliceHealth,
    tally: new SliceTally({
      db,
      redis: ephemeral instanceof FailoverEphemeralStore ? ephemeral.redis.client : undefined,
      clock,
      // Unique per start: two processes of one host (or two test nodes in one process) each count for themselves.
      node: `${config.nodeName}/${newId()}`,
    }),
    incidents,
    clock,
    alert: (decision) => {
      metrics.configRollbacks.inc({ scope: decision.scope.startsWith('tenant:') ? 'policy' : decision.scope });
      options.logger?.error(
        { alert: 'config-rolled-back', scope: decision.scope, version: decision.version, reason: decision.reason, afterMs: decision.afterMs },
        'configuration canary rolled back',
      );
    },
    onPromoted: (decision) =>
      options.logger?.info({ scope: decision.scope, version: decision.version, reason: decision.reason }, 'configuration canary promoted'),
    onError: (err, what) => options.logger?.error({ err: { message: (err as Error).message } }, `${what} failed`),
  });

  const ephemeralStore = ephemeral;
  const signingKeys = new SigningKeys(db, clock, keyRing);
  const oidcRevocation = new OidcRevocation(db);
  // Read afresh for each app request: a provider is kept per tenant, built with the policy of its day.
  const tenantRequiresMfa = async (tenantId: string) => (await tenants.findById(tenantId))?.policy.mfaRequired ?? true;
  const oidc = new OidcProviders({
    db,
    ephemeral,
    clock,
    keyRing,
    users,
    apps,
    keys: signingKeys,
    publicUrl: config.publicUrl,
    pages: oidcPages,
    onServerError: (tenant, err) =>
      options.logger?.error({ tenant: tenant.slug, err: { type: err.name, message: err.message, stack: err.stack } }, 'OpenID Connect provider failed'),
    // "Yes, sign me out" on the provider's sign-out page ends this browser's Steadfast session of that tenant
    // too. "No, stay signed in" ends only the app's sign-in (the provider revokes that app's grant); the
    // provider reports both as a success, so the answer is read here.
    async onLogout(ctx, tenant) {
      const token = ctx.cookies.get(cookieNames(config.publicUrl).session);
      const session = token ? await sessions.authenticate(token) : undefined;
      if (!session || session.tenantId !== tenant.id) return;
      // The provider has ended its own session and the grants it keeps no longer than one; an app's offline
      // grant it keeps, and it ends here with the rest of what this session gave.
      if (ctx.oidc.params?.logout) {
        await sessions.revoke(session);
        return oidcRevocation.endSteadfastSession(tenant.id, session.id, session.userId);
      }
      // "No": the provider keeps its session (signed out of the one app) under a new id. If it stood on this very
      // Steadfast session, it still does: linked again, signing out through the API still ends the other apps'
      // grants. If it stood on another (an earlier sign-in in this browser), it is left unlinked, so the next
      // app request signs in afresh from the live session instead of passing the old sign-in off as it.
      const renamed = ctx.oidc.session?.jti;
      const previous = (ctx.oidc.session as { oldId?: string } | undefined)?.oldId;
      if (!renamed || !previous || (await oidcRevocation.linkedSteadfastSession(tenant.id, previous)) !== session.id) return;
      await oidcRevocation.linkProviderSession(tenant.id, renamed, session);
    },
    async steadfastSession(ctx, tenant) {
      const token = ctx.cookies.get(cookieNames(config.publicUrl).session);
      const session = token ? await sessions.authenticate(token) : undefined;
      if (!session || session.tenantId !== tenant.id || session.scope !== 'full') return undefined;
      const user = await users.get(tenant.id, session.userId);
      if (user?.status !== 'active') return undefined;
      // The policy as it is now (the tenant the provider was built with may be older), as this request sees it.
      const mfaRequired = await tenantRequiresMfa(tenant.id);
      return { id: session.id, userId: user.id, expiresAt: session.expiresAt, owesSecondFactor: mfaRequired && !session.amr.includes('mfa') };
    },
    mfaRequired: tenantRequiresMfa,
    linkSessions: (tenantId, providerSessionId, steadfast) => oidcRevocation.linkProviderSession(tenantId, providerSessionId, steadfast),
    linkedSession: (tenantId, providerSessionId) => oidcRevocation.linkedSteadfastSession(tenantId, providerSessionId),
    linkGrant: (tenantId, grantId, steadfast) => oidcRevocation.linkGrant(tenantId, grantId, steadfast, clock.now()),
    async sessionLive(tenantId, sessionId, userId) {
      const session = await sessions.findLive(tenantId, sessionId);
      return session?.userId === userId && session.scope === 'full';
    },
    sessionLifetimeSeconds: config.sessions.lifetimeMinutes * 60,
  });
  // Whatever ends all of a user's sessions ends what the provider issued on their strength, and voids the
  // known-browser marks (an old one on a shared computer must not keep a place in the owner's budget).
  sessions.onAllEnded((tenantId, userId) => oidcRevocation.endForAccount(tenantId, userId));
  // And again once the sessions have ended: an app's request that found a session live while the first ran
  // may have saved a grant since (its refresh token would outlive the sign-out).
  sessions.afterAllEnded((tenantId, userId) => oidcRevocation.endForAccount(tenantId, userId));
  sessions.onAllEnded((tenantId, userId) => users.resetKnownBrowsers(tenantId, userId));
  // Set-ups begun in an ended session (a pairing link needs none to be used) and admin tokens the user
  // made (they act with the user's authority) end with the user's sessions.
  sessions.onAllEnded((tenantId, userId) => credentials.deletePendingForUser(tenantId, userId));
  const administration = new Administration({
    db,
    clock,
    tenants,
    users,
    hasher,
    sessions,
    passes,
    management,
    events,
    audit,
    apps,
    tokens: adminTokens,
    rollouts,
    onAddressChanged: (tenantId, former, entry) => notices.considerFormerAddress(tenantId, former, entry),
  });
  sessions.onAllEnded(async (tenantId, userId) => {
    // Through the administration, so the passes those tokens issued go with them.
    const tenant = await tenants.findById(tenantId);
    const tokensRevoked = tenant ? await administration.endTokensMadeBy(tenant, 'system', userId) : 0;
    if (tokensRevoked > 0)
      await audit.append(tenantId, { actor: 'system', action: 'token.revoked', targetUserId: userId, details: { tokensRevoked, reason: 'sessions-ended' } });
  });
  const sweeper = new Sweeper(db, clock, tenants, expirySweeps(audit), {
    engine: durable.engine,
    // During an outage the node runs on its fallback copy: the database's records are swept when it is back.
    paused: () => fallback?.usesFallback() ?? false,
    onReport: (report) => {
      for (const [sweep, rows] of Object.entries(report.removed)) if (rows > 0) metrics.sweptRows.inc({ sweep }, rows);
      if (Object.values(report.removed).some((rows) => rows > 0)) options.logger?.info({ removed: report.removed }, 'expired records removed');
      for (const problem of report.problems) {
        metrics.sweepProblems.inc();
        options.logger?.error({ problem }, 'sweep stopped');
      }
    },
    onError: (err) => options.logger?.warn({ err: { message: (err as Error).message } }, 'sweep failed; the next one tries again'),
  });
  // A worker of a node that runs several processes announces itself as one of the node's processes.
  const processName = nodeCluster.isWorker && nodeCluster.worker ? `${config.nodeName}#${nodeCluster.worker.id}` : config.nodeName;
  const cluster = new ClusterMonitor(
    {
      membership: new Membership(db, ephemeral instanceof FailoverEphemeralStore ? ephemeral.redis.client : undefined),
      load: new LoadWindow(db, config.cluster.heartbeatMs),
      clock,
      checksDone: () => hasher.checksDone,
      clustered: durable.engine === 'postgres',
      logger: options.logger,
    },
    config.cluster,
    { name: processName, node: config.nodeName },
  );
  metrics.watchCluster(cluster);
  metrics.watchEphemeral(ephemeral);
  if (fallback) {
    metrics.watchFallback(fallback);
    if (!startedInFallback) await fallback.start(durable.primaryDb!);
  }
  return {
    config,
    clock,
    keyRing,
    durable,
    ephemeral: ephemeralStore,
    hasher,
    tenants,
    users,
    adminTokens,
    credentials,
    methods,
    management,
    passwords: new PasswordChange({ users, credentials, hasher, sessions, limits, audit }),
    sessions,
    events,
    signinActivity,
    // On SQLite a large tenant's count would hold the thread that serves sign-ins: the report worker counts it.
    coverage: async (tenantId) => {
      const query = registrationCoverageQuery(db, tenantId);
      return readCoverage(durable.engine === 'sqlite' ? (await reports.page(query.compile(), 'counts')).counts?.[0] : await query.executeTakeFirst());
    },
    signin,
    admission,
    metrics,
    delivery,
    deliveryHealth,
    runtime,
    configVersions,
    rollouts,
    guard,
    incidents,
    checkComponents,
    audit,
    passes,
    apps,
    reports: new SigninReports({ db, clock, events, sessions, users, credentials, passes, audit }),
    admin: administration,
    signingKeys,
    oidc,
    oidcRevocation,
    knownBrowsers,
    anonymousStarts,
    auth: new RequestAuth({ sessions, users, tenants, adminTokens, publicUrl: config.publicUrl }),
    sweeper,
    reportReader: reports,
    cluster,
    fallback,
    async close() {
      await notices.close();
      await sweeper.stop();
      await fallback?.stop();
      await guard.stop();
      await reports.close();
      await runtime.close();
      await ephemeralStore.close();
      await durable.close();
    },
  };
}

/**
 * Redis, falling back to the durable store and then node memory while Redis
 * is away, so sign-ins carry on instead of answering 503 (issue 12).
 */
async function clusterEphemeralStore(
  url: string,
  namespace: string | undefined,
  durable: DurableStore,
  clock: Clock,
  logger: Logger | undefined,
): Promise<FailoverEphemeralStore> {
  // Loaded only for a cluster member, so the embedded default starts faster.
  const { RedisEphemeralStore } = await import('../store/ephemeral/redis-store.ts');
  const redis = await RedisEphemeralStore.connect({ url, startWithoutRedis: true, ...(namespace ? { namespace } : {}) });
  return new FailoverEphemeralStore(redis, { durable: new DurableEphemeralStore(durable.db, clock), memory: new MemoryEphemeralStore(clock) }, clock, {
    onServingChange: (tier, reason) =>
      tier === 'redis'
        ? logger?.info('Redis answers again; flows and codes are kept there')
        : logger?.error({ tier, reason }, 'Redis is unreachable; flows and codes fall back'),
  });
}

/** One connection outside the pool, one statement: answers whether the database is there when the pool cannot say (it may be only busy). */
async function probePostgres(url: string): Promise<void> {
  const { Client } = createRequire(import.meta.url)('pg') as typeof import('pg');
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000, statement_timeout: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    await client.end().catch(() => {});
  }
}

/** Provider failures and breaker changes in the log: names and reasons, never a message or its destination. */
function deliveryLog(logger: Logger | undefined): DeliveryEvents {
  return {
    attempt(channel, provider, outcome, seconds, reason) {
      if (outcome === 'delivered' || outcome === 'skipped') return;
      logger?.warn({ channel, provider, outcome, reason, ms: Math.round(seconds * 1000) }, 'delivery provider failed; trying the next');
    },
    breaker(channel, provider, state) {
      const log = state === 'open' ? logger?.error.bind(logger) : logger?.info.bind(logger);
      log?.({ channel, provider, state }, `delivery provider breaker ${state}`);
    },
  };
}

/** Delivery events also counted towards the canary comparison, for the slice the providers serve. */
function sliceEvents(events: DeliveryEvents, health: SliceHealth, slice: () => 'canary' | 'stable'): DeliveryEvents {
  return {
    attempt(channel, provider, outcome, seconds, reason) {
      // A refused destination says nothing about the configuration; a skipped provider was counted when its breaker opened.
      if (outcome === 'delivered' || outcome === 'unavailable') health.delivery('node', slice(), outcome === 'delivered');
      events.attempt(channel, provider, outcome, seconds, reason);
    },
    breaker(channel, provider, state) {
      if (state === 'open') health.breakerOpened('node', slice());
      events.breaker(channel, provider, state);
    },
  };
}

/** The master key from the configuration, or the data dir's key file (generated on first use, as `start` does). */
export function resolveMasterKey(config: Readonly<Config>, options: Pick<BuildOptions, 'onMasterKeyGenerated'>): Buffer {
  if (config.masterKey) return config.masterKey;
  const loaded = loadOrCreateMasterKeyFile(config.dataDir);
  if (loaded.generatedAt) options.onMasterKeyGenerated?.(loaded.generatedAt);
  return loaded.key;
}
