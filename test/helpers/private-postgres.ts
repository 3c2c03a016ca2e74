import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { spawnable } from './private-redis.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

/**
 * A PostgreSQL of the test's own (initdb + pg_ctl as user postgres, on a free
 * port, trust auth on loopback), which the test may stop and start again.
 * Never the shared one.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** Needs the server binaries and root (to act as user postgres). */
  static available(): boolean {
    return spawnable('runuser') && process.getuid?.() === 0 && exists(`${BIN}/initdb`);
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'steadfast-pg-'));
    chmodSync(dir, 0o700);
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
    await asPostgres(`${BIN}/initdb`, ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const pg = new PrivatePostgres(await freePort(), dir);
    await pg.up();
    await asPostgres(`${BIN}/createdb`, ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'test']);
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/test`;
  }

  async up(): Promise<void> {
    await asPostgres(`${BIN}/pg_ctl`, [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  }

  /** Stops it at once: connected clients are cut off, as in a crash of the database host. */
  async down(): Promise<void> {
    await asPostgres(`${BIN}/pg_ctl`, ['-D', join(this.dir, 'data'), '-w', '-m', 'immediate', 'stop']).catch(() => {});
  }

  async destroy(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function asPostgres(command: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', command, ...args], { timeout: 60_000 });
}

function exists(path: string): boolean {
  try {
    execFileSync('test', ['-x', path]);
    return true;
  } catch {
    return false;
  }
}
