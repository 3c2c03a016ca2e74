/** The `steadfast` command: start, migrate, tenant, user, tap, keys, backup, config and loadtest, on commander. */
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, ConfigError, sqlitePath, type Config } from '../config/config.ts';
import { AppError } from '../errors/app-error.ts';
import type { Services } from '../server/services.ts';
import type { User } from '../directory/users.ts';

// Each command loads what it needs when it runs (dynamic imports below): `--help`
// and the small commands must not pay for loading the whole server.
import { TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS } from '../directory/admin-tokens.ts';

const out = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');

/** Fails the command with one clear line on stderr and a non-zero exit. */
class UsageError extends Error {}

/** A check found a problem (`audit verify`, `backup verify`): exit 1, not the 2 of a usage error. */
class CheckFailed extends Error {}

async function userByName(services: Services, tenantId: string, username: string) {
  const found = await services.users.findByUsername(tenantId, username);
  if (!found) throw new UsageError(`no user "${username}"`);
  return found;
}

async function userJson(tenant: string, u: User) {
  const { adminUserView } = await import('../http/api-schemas.ts');
  return { tenant, ...adminUserView(u) };
}

const warnGeneratedKey = (path: string) => process.stderr.write(`warning: no STEADFAST_MASTER_KEY; generated one at ${path}. Back it up.\n`);

async function withServices<T>(config: Readonly<Config>, run: (services: Services) => Promise<T>): Promise<T> {
  const { buildServices } = await import('../server/services.ts');
  const services = await buildServices(config, { onMasterKeyGenerated: warnGeneratedKey });
  try {
    return await run(services);
  } finally {
    await services.close();
  }
}

async function tenantBySlug(services: Services, slug: string) {
  const tenant = await services.tenants.findBySlug(slug);
  if (!tenant) throw new UsageError(`no tenant "${slug}"`);
  return tenant;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--password-stdin reads the password from standard input; pipe it in');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function buildProgram(): Command {
  const program = new Command('steadfast')
    .description('Steadfast: multi-factor authentication that keeps letting the right people in')
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeErr: (text) => process.stderr.write(text.split('\n')[0]! + '\n') });

  program
    .command('start')
    .description('run a node (PORT, HOST, STEADFAST_* from the environment)')
    .action(async () => {
      const config = loadConfig();
      const { createLogger } = await import('../http/logger.ts');
      const logger = createLogger(config.logLevel);
      const { default: nodeCluster } = await import('node:cluster');
      if (config.workers > 1 && nodeCluster.isPrimary) {
        const { startPrimary } = await import('../server/workers.ts');
        return startPrimary(config, logger, (line) => process.stdout.write(line + '\n'));
      }
      if (nodeCluster.isWorker) (await import('../server/workers.ts')).exitWithPrimary();
      const { startNode } = await import('../server/start.ts');
      const node = await startNode(config, logger, (line) => process.stdout.write(line + '\n'));
      const shutdown = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        node.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err: { message: (err as Error).message } }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });

  program
    .command('migrate')
    .description('apply storage migrations and exit')
    .action(async () => {
      const config = loadConfig();
      const { keysAuditChains, migrateToLatest, openDurableStore } = await import('../store/durable/database.ts');
      const store = openDurableStore({ sqlitePath: sqlitePath(config), ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
      try {
        const result = await migrateToLatest(store.db, store.engine);
        // The upgrade that keys the audit chain keys the chains written before it, here and now.
        if (keysAuditChains(result)) {
          const [{ KeyRing }, { AuditLog }, { resolveMasterKey }, { systemClock }] = await Promise.all([
            import('../crypto/key-ring.ts'),
            import('../activity/audit-log.ts'),
            import('../server/services.ts'),
            import('../clock.ts'),
          ]);
          const keyRing = new KeyRing(resolveMasterKey(config, { onMasterKeyGenerated: warnGeneratedKey }), config.previousMasterKeys);
          await new AuditLog(store.db, store.engine, systemClock, keyRing).keyLegacyChains();
        }
        out({ engine: store.engine, applied: (result.results ?? []).map((r) => r.migrationName) });
      } finally {
        await store.close();
      }
    });

  const tenant = program.command('tenant').description('manage tenants');
  tenant
    .command('create')
    .argument('<slug>', 'lowercase letters, digits and hyphens')
    .option('--name <name>', 'display name')
    .description('create a tenant and print it as JSON')
    .action(async (slug: string, opts: { name?: string }) => {
      await withServices(loadConfig(), async (services) => {
        const created = await services.tenants.create(slug, opts.name);
        out({ id: created.id, slug: created.slug, name: created.name, policy: created.policy, createdAt: new Date(created.createdAt).toISOString() });
      });
    });

  const user = program.command('user').description('manage users');
  user
    .command('create')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--username <username>', 'username')
    .option('--email <email>', 'email address')
    .option('--phone <phone>', 'phone number in E.164 form')
    .option('--password-stdin', 'read the password from standard input')
    .option('--admin', 'may use the admin console of the tenant')
    .option('--break-glass', 'an emergency account: every sign-in raises an alert (see docs/runbooks/break-glass.md)')
    .description('create a user and print it as JSON')
    .action(
      async (opts: { tenant: string; username: string; email?: string; phone?: string; passwordStdin?: boolean; admin?: boolean; breakGlass?: boolean }) => {
        const password = opts.passwordStdin ? await readStdin() : undefined;
        await withServices(loadConfig(), async (services) => {
          const t = await tenantBySlug(services, opts.tenant);
          const created = await services.admin.createUser(t, 'cli', {
            username: opts.username,
            email: opts.email,
            phone: opts.phone,
            password,
            admin: opts.admin,
            breakGlass: opts.breakGlass,
          });
          out({ ...(await userJson(t.slug, created)), hasPassword: password !== undefined });
        });
      },
    );
  user
    .command('set')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--username <username>', 'username')
    .option('--break-glass', 'make it an emergency account')
    .option('--no-break-glass', 'make it an ordinary account again')
    .option('--admin', 'let it use the admin console')
    .option('--no-admin', 'take the admin console away')
    .addOption(new Option('--status <status>', 'enable or disable the account').choices(['active', 'disabled']))
    .description("change a user's flags and print it as JSON")
    .action(async (opts: { tenant: string; username: string; breakGlass?: boolean; admin?: boolean; status?: 'active' | 'disabled' }) => {
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        const found = await userByName(services, t.id, opts.username);
        const updated = await services.admin.updateUser(t, 'cli', found.id, { breakGlass: opts.breakGlass, admin: opts.admin, status: opts.status });
        out(await userJson(t.slug, updated));
      });
    });

  program
    .command('tap')
    .description('Temporary Access Passes')
    .command('issue')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--username <username>', 'username')
    .option('--minutes <n>', 'lifetime in minutes, within the tenant policy (default: the policy default)')
    .option('--one-time', 'usable once (the policy decides when neither is given)')
    .option('--multi-use', 'usable until it expires')
    .description('issue a Temporary Access Pass and print {code, expiresAt} (the code is shown once)')
    .action(async (opts: { tenant: string; username: string; minutes?: string; oneTime?: boolean; multiUse?: boolean }) => {
      if (opts.oneTime && opts.multiUse) throw new UsageError('choose --one-time or --multi-use, not both');
      const minutes = opts.minutes === undefined ? undefined : Number(opts.minutes);
      if (minutes !== undefined && !Number.isInteger(minutes)) throw new UsageError('--minutes must be a whole number');
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        const found = await userByName(services, t.id, opts.username);
        const oneTime = opts.oneTime ? true : opts.multiUse ? false : undefined;
        out(await services.admin.issuePass(t, 'cli', found.id, { minutes, oneTime }));
      });
    });

  program
    .command('audit')
    .description('the audit log')
    .command('verify')
    .option('--tenant <slug>', 'only this tenant (default: every tenant)')
    .description('check the audit chain; exit 0 if intact, 1 naming the first broken entry; prints the head of each chain it saw')
    .action(async (opts: { tenant?: string }) => {
      await withServices(loadConfig(), async (services) => {
        const t = opts.tenant ? await tenantBySlug(services, opts.tenant) : undefined;
        const check = await services.audit.verify(t?.id);
        // The heads are printed so they can be compared with the heads the nodes logged:
        // entries cut off the end, head and all, show only against a copy kept elsewhere.
        const slugs = new Map<string, string>();
        const slugOf = async (id: string) => slugs.get(id) ?? (await services.tenants.findById(id))?.slug ?? id;
        const heads = [];
        for (const h of check.heads) heads.push({ tenant: await slugOf(h.tenantId), seq: h.seq, hash: h.hash });
        if (check.intact) return out({ intact: true, entries: check.entries, heads });
        const tenant = await slugOf(check.tenantId);
        out({
          intact: false,
          ...(check.unverifiable ? { unverifiable: true } : {}),
          tenant,
          seq: check.seq,
          id: check.id,
          reason: check.reason,
          entriesChecked: check.entries,
          heads,
        });
        throw new CheckFailed(`audit chain of "${tenant}" ${check.unverifiable ? 'cannot be checked' : 'broken'} at entry ${check.seq}: ${check.reason}`);
      });
    });

  const configCmd = program.command('config').description('runtime configuration: versions, canaries, rollbacks (nodes take changes without a restart)');
  const whole = (name: string, min: number, max: number) => (raw: string) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  const runConfig = async <T>(run: (services: Services, cmds: typeof import('./config-commands.ts')) => Promise<T>) => {
    const cmds = await import('./config-commands.ts');
    try {
      out(await withServices(loadConfig(), (services) => run(services, cmds)));
    } catch (err) {
      if (err instanceof cmds.ConfigRefused) {
        for (const line of err.lines.slice(1)) process.stderr.write(line + '\n');
        throw new UsageError(err.lines[0]!);
      }
      throw err;
    }
  };
  configCmd
    .command('apply')
    .argument('<file>', 'the settings (delivery, admission, cache) as JSON or YAML; with --tenant, a policy')
    .option('--canary <percent>', 'give it to this share of users first (1 to 50; by stable hash of tenant and client)', whole('--canary', 0, 50))
    .option('--bake <seconds>', 'compare the canary with the rest this long, then promote it (default 300)', whole('--bake', 10, 86_400))
    .option('--tenant <slug>', "the file is this tenant's sign-in policy")
    .description('validate in full (every problem named, nothing applied on any), then store a new version; running nodes take it within seconds')
    .action(async (file: string, opts: { canary?: number; bake?: number; tenant?: string }) => runConfig((services, c) => c.configApply(services, file, opts)));
  configCmd
    .command('status')
    .option('--tenant <slug>', "this tenant's policy versions")
    .option('--history <n>', 'versions to list (default 10)', whole('--history', 1, 50))
    .description('the last good version, the canary baking (if any) and the history with diffs')
    .action(async (opts: { tenant?: string; history?: number }) => runConfig((services, c) => c.configStatus(services, opts)));
  configCmd
    .command('rollback')
    .argument('[version]', 'the version to go back to (default: the canary, else the good version before the last)', whole('version', 1, 2_147_483_647))
    .option('--tenant <slug>', "this tenant's policy")
    .option('--reason <text>', 'recorded in the history and the audit log')
    .description('end the canary at once, or make an earlier version current again (as a new version)')
    .action(async (version: number | undefined, opts: { tenant?: string; reason?: string }) =>
      runConfig((services, c) => c.configRollback(services, version, opts)),
    );
  configCmd
    .command('show')
    .argument('[version]', 'default: the last good version', whole('version', 1, 2_147_483_647))
    .option('--tenant <slug>', "this tenant's policy")
    .description('a version as applied; secrets read "(sealed)" (apply it again as it is and they are kept)')
    .action(async (version: number | undefined, opts: { tenant?: string }) => runConfig((services, c) => c.configShow(services, version, opts)));

  const backup = program.command('backup').description('backups of the embedded store');
  const warn = (warnings: string[]) => {
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  };
  const backupErrorsAre = async (Kind: new (message: string) => Error, run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      const { BackupError } = await import('../backup/sqlite-backup.ts');
      if (!(err instanceof BackupError)) throw err;
      const report = (err as Error & { report?: unknown }).report;
      if (report) out(report);
      throw new Kind(err.message);
    }
  };
  backup
    .command('create')
    .argument('<file>', 'where to write the backup (must not exist)')
    .description('write a consistent backup of the embedded store while the node runs (never the master key) and print what it holds')
    .action(async (file: string) => {
      await backupErrorsAre(UsageError, async () => {
        const { backupCreate } = await import('./backup-commands.ts');
        const { report, warnings } = await backupCreate(loadConfig(), file);
        out(report);
        warn(warnings);
      });
    });
  backup
    .command('verify')
    .argument('<file>', 'a backup file')
    .description('check a backup: whole, a known schema, and with the master keys configured here, the right keys and an intact audit chain; exit 1 if not')
    .action(async (file: string) => {
      await backupErrorsAre(CheckFailed, async () => {
        const { backupVerify } = await import('./backup-commands.ts');
        const result = await backupVerify(loadConfig(), file);
        out({ ok: result.ok, ...result.report });
        warn(result.warnings);
        if (!result.ok) throw new CheckFailed(result.problem ?? 'the backup did not verify');
      });
    });
  backup
    .command('restore')
    .argument('<file>', 'a backup file')
    .description('restore a backup into an empty data dir (STEADFAST_DATA_DIR), with the master key supplied as usual')
    .action(async (file: string) => {
      await backupErrorsAre(UsageError, async () => {
        const { backupRestore } = await import('./backup-commands.ts');
        const { report, warnings } = await backupRestore(loadConfig(), file);
        out(report);
        warn(warnings);
      });
    });

  const token = program.command('token').description('manage admin API tokens');
  token
    .command('create')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .addOption(new Option('--role <role>', 'token role').choices(['admin']).makeOptionMandatory())
    .option('--days <n>', `days until it expires (1 to ${TOKEN_MAX_DAYS}, default ${TOKEN_DEFAULT_DAYS})`)
    .option('--name <name>', 'what the token is for, shown by token list')
    .description('create an admin API token and print it (shown once)')
    .action(async (opts: { tenant: string; role: string; days?: string; name?: string }) => {
      const days = opts.days === undefined ? undefined : Number(opts.days);
      if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > TOKEN_MAX_DAYS))
        throw new UsageError(`--days must be a whole number from 1 to ${TOKEN_MAX_DAYS}`);
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        const created = await services.admin.createToken(t, 'cli', { days, name: opts.name });
        out({ token: created.token, id: created.id, expiresAt: created.expiresAt });
      });
    });
  token
    .command('list')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .description('list the admin API tokens of a tenant (id, name, created, expires, last used; never the secret)')
    .action(async (opts: { tenant: string }) => {
      await withServices(loadConfig(), async (services) => out(await services.admin.listTokens(await tenantBySlug(services, opts.tenant))));
    });
  token
    .command('revoke')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .argument('<id>', 'the token id (from token list)')
    .description('revoke an admin API token as leaked: its passes go, and what was set up since on the accounts it touched is taken back')
    .action(async (id: string, opts: { tenant: string }) => {
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        await services.admin.revokeToken(t, 'cli', id);
        out({ revoked: id });
      });
    });

  const keys = program.command('keys').description('master key rotation');
  keys
    .command('rewrap')
    .description('re-seal every stored secret under the active master key (after a rotation)')
    .action(async () => {
      const { rewrapSecrets } = await import('./rewrap-secrets.ts');
      const { ConfigSecrets } = await import('../config/config-secrets.ts');
      await withServices(loadConfig(), async (services) => {
        const rewrapped = await rewrapSecrets(services.durable.db, services.keyRing);
        // Audit MACs cannot be re-made without rewriting history: older keys stay needed to verify them.
        const auditKeys = (await services.audit.entriesByKey()).filter((k) => k.keyId !== null && k.keyId !== services.keyRing.active.id);
        out({
          activeKey: services.keyRing.active.id,
          ...rewrapped,
          contacts: await services.users.sealContacts({ rewrap: true }),
          // Provider tokens inside stored configuration versions, the ones a rollback may return to included.
          configVersions: await services.configVersions.rewrapSecrets(new ConfigSecrets(services.keyRing)),
          auditEntriesUnderOlderKeys: auditKeys,
        });
        if (auditKeys.length > 0) {
          process.stderr.write(
            `note: audit entries keyed by ${auditKeys.map((k) => k.keyId).join(', ')} are kept; keep those keys in STEADFAST_PREVIOUS_MASTER_KEYS until retention removes them, so steadfast audit verify can check them\n`,
          );
        }
      });
    });

  program
    .command('oidc')
    .description('OpenID Connect')
    .command('rotate-keys')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .description('add a new ID token signing key for the tenant; the old one stays published until tokens it signed expire')
    .action(async (opts: { tenant: string }) => {
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        out({ tenant: t.slug, kid: await services.signingKeys.rotate(t.id) });
      });
    });

  program
    .command('loadtest')
    .description('drive a realistic sign-in mix against a deployment with temporary users (admin token from STEADFAST_ADMIN_TOKEN)')
    .requiredOption('--url <url>', 'the deployment, e.g. https://id.example.com or the load balancer')
    .requiredOption('--tenant <slug>', 'tenant the temporary users are created in')
    .option('--rate <n>', 'journeys started per second', '20')
    .option('--duration <seconds>', 'how long to offer the load', '60')
    .option('--mix <shares>', 'journeys and their shares: totp (password + app), passkey, sms, setup (self-service)', 'totp=60,passkey=25,sms=10,setup=5')
    .option('--users <n>', 'temporary users (default: enough for the rate and mix)')
    .option('--origin <url>', "the deployment's public URL, for passkeys (default: --url)")
    .option(
      '--sms-webhook <[host:]port>',
      "run a stand-in SMS gateway here for the deployment's webhook provider (secret from STEADFAST_LOADTEST_WEBHOOK_SECRET)",
    )
    .option('--drill', 'failover drill: ask the operator to kill or drain a node a third of the way in, and report the failover window')
    .option('--drill-at <seconds>', 'when the drill happens (default: a third of --duration)')
    .option('--kill-cmd <command>', 'with --drill: run this shell command instead of asking (e.g. "systemctl kill -s KILL steadfast@2")')
    .option('--keep-users', 'leave the temporary users in place')
    .option('--json', 'print one JSON object {offered, succeeded, failed, p50Ms, p99Ms, byKind, …} and no table')
    .option('--report <file.html>', 'write a self-contained HTML page with throughput, latency and error charts')
    .action(
      async (opts: {
        url: string;
        tenant: string;
        rate: string;
        duration: string;
        mix: string;
        users?: string;
        origin?: string;
        smsWebhook?: string;
        drill?: boolean;
        drillAt?: string;
        killCmd?: string;
        keepUsers?: boolean;
        json?: boolean;
        report?: string;
      }) => {
        const { runLoadtest, parseMix } = await import('../loadtest/run-loadtest.ts');
        const adminToken = process.env.STEADFAST_ADMIN_TOKEN;
        if (!adminToken) throw new UsageError('set STEADFAST_ADMIN_TOKEN to an admin token of the tenant (steadfast token create --tenant SLUG --role admin)');
        const number = (text: string, name: string, min: number) => {
          const n = Number(text);
          if (!Number.isFinite(n) || n < min) throw new UsageError(`${name} must be a number of at least ${min}`);
          return n;
        };
        let url: URL;
        try {
          url = new URL(opts.url);
          if (!/^https?:$/.test(url.protocol)) throw new Error();
        } catch {
          throw new UsageError('--url must be an http(s) URL');
        }
        let mix;
        try {
          mix = parseMix(opts.mix);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        const duration = number(opts.duration, '--duration', 1);
        let smsWebhook;
        if (opts.smsWebhook) {
          const secret = process.env.STEADFAST_LOADTEST_WEBHOOK_SECRET;
          if (!secret || secret.length < 16)
            throw new UsageError('--sms-webhook needs STEADFAST_LOADTEST_WEBHOOK_SECRET (16+ characters, the secret of the webhook provider)');
          const match = /^(?:(.+):)?(\d+)$/.exec(opts.smsWebhook);
          if (!match) throw new UsageError('--sms-webhook is [host:]port');
          smsWebhook = { host: match[1] ?? '0.0.0.0', port: Number(match[2]), secret };
        }
        if (opts.killCmd && !opts.drill) throw new UsageError('--kill-cmd goes with --drill');
        await runLoadtest(
          {
            url: url.origin + url.pathname.replace(/\/+$/, ''),
            tenant: opts.tenant,
            adminToken,
            rate: number(opts.rate, '--rate', 0.1),
            durationSeconds: duration,
            mix,
            users: opts.users === undefined ? undefined : number(opts.users, '--users', 1),
            origin: opts.origin ?? url.origin,
            json: Boolean(opts.json),
            report: opts.report,
            smsWebhook,
            drill: opts.drill
              ? { atSecond: opts.drillAt === undefined ? duration / 3 : number(opts.drillAt, '--drill-at', 0), killCmd: opts.killCmd }
              : undefined,
            keepUsers: Boolean(opts.keepUsers),
            maxInFlight: 2000,
          },
          { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text), progress: Boolean(process.stderr.isTTY) },
        );
      },
    );

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof CheckFailed) {
      process.stderr.write(`steadfast: ${err.message}\n`);
      return 1;
    }
    const message =
      err instanceof ConfigError
        ? err.message
        : err instanceof AppError || err instanceof UsageError
          ? err.message
          : `failed: ${(err as Error).message ?? String(err)}`;
    process.stderr.write(`steadfast: ${message.split('\n')[0]}\n`);
    return err instanceof ConfigError || err instanceof AppError || err instanceof UsageError ? 2 : 1;
  }
}

const code = await main(process.argv);
// `start` keeps running; every other command exits with its code.
if (code !== 0 || process.argv[2] !== 'start') process.exitCode = code;
