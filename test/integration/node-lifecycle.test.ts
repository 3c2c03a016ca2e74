import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { api } from '../helpers/test-server.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-node-'));

interface Node {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stdout: () => string;
  stderr: () => string;
}

/** `steadfast start` exactly as `npm start` runs it, with no STEADFAST_MASTER_KEY. */
async function startNode(): Promise<Node> {
  const port = await freePort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    STEADFAST_DATA_DIR: dataDir,
    PORT: String(port),
    STEADFAST_LOG_LEVEL: 'info',
  };
  delete env.STEADFAST_MASTER_KEY;
  const child = spawn(process.execPath, [BIN, 'start'], { env });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // Up when it says so; an exit before that fails the start (the test's own timeout bounds a node that never comes up).
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('steadfast node is up')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`node exited (${code}) before it was up: ${err}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return { child, url, stdout: () => out, stderr: () => err };
}

function stop(node: Node, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((resolve) => {
    node.child.once('close', (code) => resolve(code));
    node.child.kill(signal);
  });
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('a node started as `npm start` does', () => {
  let password = '';

  it('creates the demo tenant and user on an empty store, prints how to sign in, and the password works', async () => {
    const node = await startNode();
    try {
      const out = node.stdout();
      expect(out).toContain('/t/demo/signin');
      password = /password\s+(\S+)/.exec(out)?.[1] ?? '';
      expect(password).toMatch(/^[a-z0-9]{4}(-[a-z0-9]{4}){3}$/);
      expect(out).toMatch(/generated a master key/);
      expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
      // The password is printed for the operator, never logged.
      expect(
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .join('\n'),
      ).not.toContain(password);

      const signin = await api(node.url, 'POST', '/api/v1/t/demo/signin', { username: 'demo', password });
      expect(signin.body.state).toBe('registration_required');
      const ready = await api(node.url, 'GET', '/readyz');
      expect(ready.body).toMatchObject({
        status: 'ready',
        components: { durable: { state: 'up', engine: 'sqlite' }, ephemeral: { state: 'up', engine: 'memory' } },
      });
      expect((await api(node.url, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    } finally {
      expect(await stop(node)).toBe(0);
    }
    expect(node.stdout()).toContain('steadfast node stopped');
    // The WAL was checkpointed into the database on the way out.
    const wal = join(dataDir, 'steadfast.db-wal');
    expect(existsSync(wal) ? statSync(wal).size : 0).toBe(0);
  });

  it('keeps everything across a restart and does not seed again', async () => {
    const node = await startNode();
    try {
      expect(node.stdout()).not.toContain('/t/demo/signin');
      const signin = await api(node.url, 'POST', '/api/v1/t/demo/signin', { username: 'demo', password });
      expect(signin.status).toBe(200);
    } finally {
      expect(await stop(node, 'SIGINT')).toBe(0);
    }
  });
});
