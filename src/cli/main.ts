import { Command, CommanderError, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from '../config/config.ts';
import { createLogger } from '../http/logger.ts';
import { AppError } from '../errors/app-error.ts';
import { buildServices, type Services } from '../server/services.ts';
import { startNode } from '../server/start.ts';
import { migrateToLatest, openDurableStore } from '../store/durable/database.ts';
import { sqlitePath } from '../config/config.ts';
import { rewrapSecrets } from '../methods/rewrap-secrets.ts';

const out = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');

/** Fails the command with one clear line on stderr and a non-zero exit. */
class UsageError extends Error {}

async function withServices<T>(config: Readonly<Config>, run: (services: Services) => Promise<T>): Promise<T> {
  const services = await buildServices(config, {
    onMasterKeyGenerated: (path) => process.stderr.write(`warning: no STEADFAST_MASTER_KEY; generated one at ${path}. Back it up.\n`),
  });
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
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
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
      const logger = createLogger(config.logLevel);
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
      const store = openDurableStore({ sqlitePath: sqlitePath(config), ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
      try {
        const result = await migrateToLatest(store.db, store.engine);
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
    .description('create a user and print it as JSON')
    .action(async (opts: { tenant: string; username: string; email?: string; phone?: string; passwordStdin?: boolean }) => {
      const password = opts.passwordStdin ? await readStdin() : undefined;
      if (password !== undefined && (password.length < 8 || password.length > 1024)) throw new UsageError('a password is 8 to 1024 characters');
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        const created = await services.users.create(t.id, {
          username: opts.username,
          email: opts.email,
          phone: opts.phone,
          passwordHash: password === undefined ? undefined : await services.hasher.hash(password),
        });
        out({ id: created.id, tenant: t.slug, username: created.username, email: created.email, phone: created.phone, status: created.status, hasPassword: password !== undefined, createdAt: new Date(created.createdAt).toISOString() });
      });
    });

  const token = program.command('token').description('manage API tokens');
  token
    .command('create')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .addOption(new Option('--role <role>', 'token role').choices(['admin']).makeOptionMandatory())
    .description('create an admin API token and print it (shown once)')
    .action(async (opts: { tenant: string; role: string }) => {
      await withServices(loadConfig(), async (services) => {
        const t = await tenantBySlug(services, opts.tenant);
        const created = await services.adminTokens.create(t.id, opts.role);
        out({ token: created.token });
      });
    });

  const keys = program.command('keys').description('master key rotation');
  keys
    .command('rewrap')
    .description('re-seal every stored secret under the active master key (after a rotation)')
    .action(async () => {
      await withServices(loadConfig(), async (services) => {
        out({ activeKey: services.keyRing.active.id, ...(await rewrapSecrets(services.durable.db, services.keyRing)) });
      });
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
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
