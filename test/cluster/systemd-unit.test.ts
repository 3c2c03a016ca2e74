import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { requireServices } from '../helpers/services-available.ts';
import { eventually, Fatal } from './cluster-harness.ts';

const ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const UNIT = readFileSync(new URL('../../deploy/systemd/steadfast.service', import.meta.url), 'utf8');
const ENV_EXAMPLE = new URL('../../deploy/systemd/steadfast.env.example', import.meta.url).pathname;

const analyzeAvailable = (() => {
  const found = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!found && requireServices) throw new Error('systemd-analyze is required (STEADFAST_REQUIRE_SERVICES=1): apt-get install systemd');
  return found;
})();

/** The [Service] settings of the unit, each key with all its values in order. */
function serviceSettings(unit: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const line of unit.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line.trim());
    if (header) section = header[1]!;
    const setting = /^(\w+)=(.*)$/.exec(line);
    if (section === 'Service' && setting) settings.set(setting[1]!, [...(settings.get(setting[1]!) ?? []), setting[2]!]);
  }
  return settings;
}

/** The unit as installed here: this checkout in place of /opt/steadfast, this Node, the example env file. */
function localised(unit: string): string {
  return unit.replaceAll('/opt/steadfast', ROOT).replaceAll('/usr/bin/node', process.execPath).replaceAll('/etc/steadfast/steadfast.env', ENV_EXAMPLE);
}

describe('the systemd unit in deploy/', () => {
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.runIf(analyzeAvailable)('passes systemd-analyze verify', () => {
    const path = join(dir, 'steadfast.service');
    writeFileSync(path, localised(UNIT));
    const result = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    expect(result.stderr.split('\n').filter((l) => l.includes('steadfast.service'))).toEqual([]);
    expect(result.status).toBe(0);
  });

  it('starts a node with its ExecStart, environment and working directory, and stops it cleanly with its KillSignal', async () => {
    const service = serviceSettings(localised(UNIT));
    const [exec, ...args] = service.get('ExecStart')![0]!.split(' ');
    const env: Record<string, string> = {};
    for (const assignment of service.get('Environment') ?? []) {
      const [key, ...value] = assignment.split('=');
      env[key!] = value.join('=');
    }
    // The example environment file is for a cluster; this runs the node on the embedded store.
    const port = await freePort();
    const child = spawn(exec!, args, {
      cwd: service.get('WorkingDirectory')![0],
      env: {
        PATH: process.env.PATH ?? '',
        ...env,
        STEADFAST_DATA_DIR: dir,
        PORT: String(port),
        HOST: '127.0.0.1',
        STEADFAST_CAPACITY_PER_SECOND: '10',
        STEADFAST_LOG_LEVEL: 'warn',
      },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await eventually('the node to be ready', async () => {
      if (child.exitCode !== null) throw new Fatal(`the node exited: ${output}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
    });
    const signal = service.get('KillSignal')![0] as NodeJS.Signals;
    child.kill(signal);
    // Exit 0 is a clean stop for systemd: Restart=on-failure does not restart it.
    expect(await exited).toBe(0);
    expect(service.get('Restart')).toEqual(['on-failure']);
  });
});
