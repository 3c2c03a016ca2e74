import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { sqlitePath } from '../config/config.ts';
import { systemClock, type Clock } from '../clock.ts';
import { KeyRing } from '../crypto/key-ring.ts';
import { loadOrCreateMasterKeyFile } from '../crypto/master-key-file.ts';
import type { MigrationResultSet } from 'kysely';
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
import { createMethodRegistry, type MethodRegistry } from '../methods/registry.ts';
import { relyingPartyFrom } from '../methods/webauthn/webauthn-method.ts';
import { MethodManagement } from '../methods/method-management.ts';
import { Sessions } from '../sessions/sessions.ts';
import { SigninEvents } from '../activity/signin-events.ts';
import { ReportReader } from '../activity/report-reader.ts';
import { AbuseLimits, type AbuseLimitsOptions } from '../signin/abuse-limits.ts';
import { SigninService } from '../signin/signin-service.ts';
import { KnownBrowsers } from '../signin/known-browsers.ts';
import { AnonymousStarts } from '../signin/anonymous-starts.ts';
import { AdmissionController } from '../admission/admission-controller.ts';
import { Metrics } from '../status/metrics.ts';
import { KeyedHasher } from '../crypto/keyed-hash.ts';
import { Delivery } from '../delivery/delivery.ts';
import type { DeliveryEvents } from '../delivery/provider-chain.ts';
import { OneTimeCodes } from '../methods/out-of-band/one-time-codes.ts';
import { SendLimits } from '../methods/out-of-band/send-limits.ts';
import { AuditLog } from '../activity/audit-log.ts';
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
import type { RedisEphemeralStore } from '../store/ephemeral/redis-store.ts';
import { ClusterMonitor } from '../cluster/cluster-monitor.ts';
import { Membership } from '../cluster/membership.ts';
import { LoadWindow } from '../cluster/load-window.ts';
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
  signin: SigninService;
  admission: AdmissionController;
  metrics: Metrics;
  delivery: Delivery;
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

export async function buildServices(config: Readonly<Config>, options: BuildOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const keyRing = new KeyRing(resolveMasterKey(config, options), config.previousMasterKeys);

  const durable = openDurableStore({
    sqlitePath: sqlitePath(config),
    backgroundCheckpoint: options.server ?? false,
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}),
  });
  let ephemeral: EphemeralStore | undefined;
  let migrated: MigrationResultSet;
  try {
    migrated = await migrateToLatest(durable.db, durable.engine);
    // Redis's client loads only for a cluster member.
    ephemeral = config.redisUrl
      ? await (await import('../store/ephemeral/redis-store.ts')).RedisEphemeralStore.connect({ url: config.redisUrl, namespace: options.redisNamespace ?? config.redisNamespace })
      : new MemoryEphemeralStore(clock);
  } catch (err) {
    await durable.close();
    throw err;
  }

  const db = durable.db;
  const metrics = new Metrics();
  const hasher = new PasswordHasher({ ...config.hashing, events: metrics.hashingEvents(), ...options.hasher });
  const tenants = new Tenants(db, clock);
  const users = new Users(db, clock, new ProfileSeal(keyRing));
  // Contact details written in clear by an older release are sealed before anything reads them.
  await users.sealContacts({ rewrap: false });
  const credentials = new Credentials(db, clock);
  const delivery = new Delivery(config.delivery.channels, metrics.deliveryEvents(deliveryLog(options.logger)), () => clock.now());
  const { code, limits: sendLimitSettings } = config.delivery;
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
      digits: code.digits,
      lifetimeMs: code.lifetimeMinutes * 60_000,
      maxAttempts: code.maxAttempts,
    }),
    sendLimits: new SendLimits(ephemeral, sendLimitSettings),
    destinationHasher: new KeyedHasher(keyRing.deriveKey('destinations')),
    publicHost: new URL(config.publicUrl).host,
    resendCooldownMs: code.resendCooldownSeconds * 1000,
    allowedCountries: config.delivery.allowedCountries,
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
  });
  const groupCommit = new GroupCommit(db);
  const sessions = new Sessions(
    db,
    clock,
    { lifetimeMs: config.sessions.lifetimeMinutes * 60_000, idleMs: config.sessions.idleMinutes * 60_000 },
    groupCommit,
  );
  // Reports (admin log pages on SQLite, every export) run in a worker thread on their own connection.
  const reports = new ReportReader({ engine: durable.engine, sqlitePath: sqlitePath(config), ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}), ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}) });
  const events = new SigninEvents(db, clock, config.nodeName, groupCommit, { reader: reports, lists: durable.engine === 'sqlite' });
  const limits = new AbuseLimits(ephemeral, options.limits);
  const adminTokens = new AdminTokens(db, clock);
  const anonymousStarts = new AnonymousStarts(ephemeral);
  const knownBrowsers = new KnownBrowsers(keyRing.deriveKey('known-browsers'), clock);
  const audit = new AuditLog(db, durable.engine, clock, keyRing, {
    // Shipped logs anchor the chain's end: cutting entries off the end of a chain shows against them.
    onAppended: (head) => options.logger?.info({ tenantId: head.tenantId, auditSeq: head.seq, auditHash: head.hash }, 'audit chain head'),
  });
  if (keysAuditChains(migrated)) await audit.keyLegacyChains();
  const passes = new AccessPasses(db, clock, hasher);
  const apps = new Apps(db, clock, keyRing);
  const management = new MethodManagement({ credentials, methods, sessions, db, clock });
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
  const admission = new AdmissionController(config.admission, metrics.admissionEvents());
  metrics.watch(admission, hasher);

  const ephemeralStore = ephemeral;
  const signingKeys = new SigningKeys(db, clock, keyRing);
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
    onServerError: (tenant, err) => options.logger?.error({ tenant: tenant.slug, err: { type: err.name, message: err.message, stack: err.stack } }, 'OpenID Connect provider failed'),
    // Signing out of an app at the provider ends the Steadfast session of that browser too.
    async onLogout(ctx) {
      const token = ctx.cookies.get(cookieNames(config.publicUrl).session);
      const session = token ? await sessions.authenticate(token) : undefined;
      if (session) await sessions.revoke(session);
    },
    async steadfastUser(ctx, tenant) {
      const token = ctx.cookies.get(cookieNames(config.publicUrl).session);
      const session = token ? await sessions.authenticate(token) : undefined;
      if (!session || session.tenantId !== tenant.id || session.scope !== 'full') return undefined;
      const user = await users.get(tenant.id, session.userId);
      return user?.status === 'active' ? user.id : undefined;
    },
    sessionLifetimeSeconds: config.sessions.lifetimeMinutes * 60,
  });
  const oidcRevocation = new OidcRevocation(db);
  // Whatever ends all of a user's sessions ends what the provider issued on their strength, and voids the
  // known-browser marks (an old one on a shared computer must not keep a place in the owner's budget).
  sessions.onAllEnded((tenantId, userId) => oidcRevocation.endForAccount(tenantId, userId));
  sessions.onAllEnded((tenantId, userId) => users.resetKnownBrowsers(tenantId, userId));
  const sweeper = new Sweeper(db, clock, tenants, expirySweeps(audit), {
    engine: durable.engine,
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
      membership: new Membership(db, ephemeral.kind === 'redis' ? (ephemeral as RedisEphemeralStore).client : undefined),
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
    passwords: new PasswordChange({ users, hasher, sessions, limits }),
    sessions,
    events,
    signin,
    admission,
    metrics,
    delivery,
    audit,
    passes,
    apps,
    reports: new SigninReports({ events, sessions, users, audit }),
    admin: new Administration({ db, clock, tenants, users, hasher, sessions, passes, management, events, audit, apps, tokens: adminTokens }),
    signingKeys,
    oidc,
    oidcRevocation,
    knownBrowsers,
    anonymousStarts,
    auth: new RequestAuth({ sessions, users, tenants, adminTokens, publicUrl: config.publicUrl }),
    sweeper,
    reportReader: reports,
    cluster,
    async close() {
      await sweeper.stop();
      await reports.close();
      await delivery.close();
      await ephemeralStore.close();
      await durable.close();
    },
  };
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

/** The master key from the configuration, or the data dir's key file (generated on first use, as `start` does). */
export function resolveMasterKey(config: Readonly<Config>, options: Pick<BuildOptions, 'onMasterKeyGenerated'>): Buffer {
  if (config.masterKey) return config.masterKey;
  const loaded = loadOrCreateMasterKeyFile(config.dataDir);
  if (loaded.generatedAt) options.onMasterKeyGenerated?.(loaded.generatedAt);
  return loaded.key;
}
