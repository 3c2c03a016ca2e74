import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/free-port.ts';
import { requireServices } from '../helpers/services-available.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;
export const HAPROXY_CFG = new URL('../../deploy/haproxy/haproxy.cfg', import.meta.url).pathname;

/** Whether Debian's haproxy is installed; with STEADFAST_REQUIRE_SERVICES=1 its absence is an error. */
export function haproxyAvailable(): boolean {
  const found = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
  if (!found && requireServices) throw new Error('haproxy is required (STEADFAST_REQUIRE_SERVICES=1): apt-get install haproxy');
  return found;
}

export interface Proc {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<number | null>;
}

function run(command: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(command, args, { env: { ...(process.env as Record<string, string>), ...env } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

export interface NodeProc extends Proc {
  name: string;
  port: number;
  url: string;
  dataDir: string;
}

/** `steadfast start` as its own process, as systemd or a container would run it. */
export async function startNodeProcess(name: string, env: Record<string, string>): Promise<NodeProc> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `steadfast-${name}-`));
  const proc = run(process.execPath, [BIN, 'start'], { ...env, PORT: String(port), HOST: '127.0.0.1', STEADFAST_NODE_NAME: name, STEADFAST_DATA_DIR: dataDir });
  return { ...proc, name, port, url: `http://127.0.0.1:${port}`, dataDir };
}

export async function startHaproxy(nodes: NodeProc[], listenPort?: number): Promise<Proc & { url: string; port: number }> {
  const port = listenPort ?? (await freePort());
  const stats = await freePort();
  const env: Record<string, string> = { STEADFAST_LISTEN: `127.0.0.1:${port}`, HAPROXY_STATS: `127.0.0.1:${stats}` };
  nodes.forEach((n, i) => (env[`STEADFAST_NODE${i + 1}`] = `127.0.0.1:${n.port}`));
  // -db: stay in the foreground, so the test owns the process.
  return { ...run('haproxy', ['-db', '-f', HAPROXY_CFG], env), url: `http://127.0.0.1:${port}`, port };
}

/** Thrown from a check of `eventually`: stop waiting at once (a process died). */
export class Fatal extends Error {}

/** Waits for `check` to hold, asking again as often as it answers; fails with `what` after `limitMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
