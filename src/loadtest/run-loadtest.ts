/** `steadfast loadtest`: an open-loop load of sign-in journeys against a deployment, with a report. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import { HttpClient, StepFailed } from './http-client.ts';
import { JOURNEYS, KIND_NAMES, KINDS, NoFreeUser, type JourneyContext, type Kind } from './journeys.ts';
import { Recorder, type Figures } from './recorder.ts';
import { renderReport, type DrillFigures } from './report-html.ts';
import { SmsReceiver } from './sms-receiver.ts';
import { UserPool } from './user-pool.ts';
import { TOTP_PERIOD_MS } from './totp-code.ts';

export interface LoadtestOptions {
  url: string;
  tenant: string;
  adminToken: string;
  /** Journeys started per second. */
  rate: number;
  durationSeconds: number;
  mix: Partial<Record<Kind, number>>;
  users?: number | undefined;
  origin: string;
  json: boolean;
  report?: string | undefined;
  /** Where the stand-in SMS gateway listens ([host:]port), with the webhook secret. */
  smsWebhook?: { host: string; port: number; secret: string } | undefined;
  drill?: { atSecond: number; killCmd?: string | undefined } | undefined;
  keepUsers: boolean;
  /** Journeys in flight at most; past it the generator skips (it cannot keep up). */
  maxInFlight: number;
}

export interface LoadtestIo {
  out: (text: string) => void;
  err: (text: string) => void;
  progress: boolean;
}

/** Parses `--mix totp=60,passkey=25,sms=10,setup=5` (or `:`), shares in any unit. */
export function parseMix(text: string): Partial<Record<Kind, number>> {
  const mix: Partial<Record<Kind, number>> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, weight] = part.split(/[=:]/);
    if (!KINDS.includes(name as Kind)) throw new Error(`--mix: unknown journey "${name}" (known: ${KINDS.join(', ')})`);
    const value = weight === undefined ? 1 : Number(weight);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--mix: "${part}" needs a share of 0 or more`);
    if (value > 0) mix[name as Kind] = value;
  }
  if (Object.keys(mix).length === 0) throw new Error('--mix names no journey');
  return mix;
}

/** Shares as whole percentages adding up to 100. */
function percentages(mix: Partial<Record<Kind, number>>): Partial<Record<Kind, number>> {
  const total = Object.values(mix).reduce((n, v) => n + v!, 0);
  return Object.fromEntries(Object.entries(mix).map(([k, v]) => [k, Math.round((100 * v!) / total)]));
}

/** Smooth weighted round-robin: the kinds come in their shares, evenly spread. */
function kindPicker(mix: Partial<Record<Kind, number>>): () => Kind {
  const entries = Object.entries(mix) as [Kind, number][];
  const total = entries.reduce((n, [, w]) => n + w, 0);
  const current = new Map<Kind, number>(entries.map(([k]) => [k, 0]));
  return () => {
    let best: Kind = entries[0]![0];
    for (const [k, w] of entries) {
      current.set(k, current.get(k)! + w);
      if (current.get(k)! > current.get(best)!) best = k;
    }
    current.set(best, current.get(best)! - total);
    return best;
  };
}

/**
 * Users needed so that no journey waits for one: a TOTP user signs in about
 * once per 30 s step (each step is accepted once, and a code may run at most one
 * step ahead), an SMS user ten times an hour (the default per-destination send
 * limit).
 */
function usersNeeded(o: LoadtestOptions, shares: Partial<Record<Kind, number>>): number {
  const rateOf = (k: Kind) => (o.rate * (shares[k] ?? 0)) / 100;
  const totp = Math.ceil((rateOf('totp') + rateOf('setup')) * (TOTP_PERIOD_MS / 1000) * 1.25);
  const sms = Math.ceil((rateOf('sms') * o.durationSeconds) / 8);
  const passkey = Math.ceil(rateOf('passkey') * 2);
  return Math.min(5000, Math.max(10, totp, sms, passkey));
}

export interface LoadtestResult extends Figures {
  byKind: Partial<Record<Kind, Figures>>;
  skipped: number;
  errors: Record<string, number>;
  drill?: DrillFigures;
}

export async function runLoadtest(o: LoadtestOptions, io: LoadtestIo): Promise<LoadtestResult> {
  let mix = { ...o.mix };
  if (mix.sms && !o.smsWebhook) {
    io.err('steadfast loadtest: no --sms-webhook, so no SMS journeys (point a webhook SMS provider of the deployment at the loadtest to include them)\n');
    delete mix.sms;
    if (Object.keys(mix).length === 0) throw new Error('nothing left in --mix without SMS');
  }
  mix = percentages(mix);
  const http = new HttpClient(o.url.replace(/\/+$/, ''));
  const sms = o.smsWebhook ? new SmsReceiver(o.smsWebhook.secret) : undefined;
  if (sms && o.smsWebhook) await sms.listen(o.smsWebhook.port, o.smsWebhook.host);
  const pool = new UserPool(http, o.tenant, o.adminToken, o.origin, sms);
  const recorder = new Recorder();
  const count = o.users ?? usersNeeded(o, mix);
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSigint);
  try {
    // Set-up: temporary users with every method the mix needs.
    const setupBar =
      o.json || !io.progress
        ? undefined
        : new SingleBar({ format: 'setting up users |{bar}| {value}/{total}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
    setupBar?.start(count, 0);
    try {
      await pool.create(count, { passkeys: Boolean(mix.passkey), sms: Boolean(mix.sms) }, 8, () => setupBar?.increment());
    } catch (err) {
      throw new Error(`setting up the temporary users failed: ${(err as Error).message}`);
    } finally {
      setupBar?.stop();
    }

    const ctx: JourneyContext = { http, pool, tenant: o.tenant, sms };
    const pick = kindPicker(mix);
    const bar =
      o.json || !io.progress
        ? undefined
        : new SingleBar(
            { format: 'loadtest |{bar}| {value}/{total} s | {ok} ok, {failed} failed | in flight {inFlight}', stream: process.stderr, hideCursor: true },
            Presets.shades_classic,
          );
    bar?.start(o.durationSeconds, 0, { ok: 0, failed: 0, inFlight: 0 });
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    let launched = 0;
    let inFlight = 0;
    let ok = 0;
    let failed = 0;
    const running = new Set<Promise<void>>();
    let drill: { atMs: number; action: string } | undefined;
    const durationMs = o.durationSeconds * 1000;

    const launch = (kind: Kind) => {
      const startedMs = elapsed();
      inFlight++;
      const journey = JOURNEYS[kind](ctx).then(
        () => {
          recorder.add({ kind, startedMs, endedMs: elapsed(), ok: true });
          ok++;
        },
        (err: unknown) => {
          if (err instanceof NoFreeUser) {
            recorder.skipped++;
            return;
          }
          recorder.add({ kind, startedMs, endedMs: elapsed(), ok: false, error: err instanceof StepFailed ? err.label : `error ${(err as Error).message}` });
          failed++;
        },
      );
      const tracked = journey.finally(() => {
        inFlight--;
        running.delete(tracked);
      });
      running.add(tracked);
    };

    const total = Math.round(o.rate * o.durationSeconds);
    while (!interrupted && launched < total) {
      // Open loop: journeys start on schedule whether or not earlier ones have finished.
      const due = Math.min(total, Math.floor((elapsed() / 1000) * o.rate) + 1);
      while (launched < due) {
        launched++;
        if (inFlight >= o.maxInFlight) recorder.skipped++;
        else launch(pick());
      }
      if (o.drill && !drill && elapsed() >= o.drill.atSecond * 1000) {
        drill = { atMs: elapsed(), action: o.drill.killCmd ? `ran ${o.drill.killCmd}` : 'operator asked to kill or drain a node' };
        if (o.drill.killCmd) {
          spawn('sh', ['-c', o.drill.killCmd], { stdio: 'ignore' }).on('error', () => {});
        } else {
          io.err(`\n>>> DRILL: kill or drain a node now (the run goes on for ${Math.round((durationMs - elapsed()) / 1000)} s) <<<\n`);
        }
      }
      bar?.update(Math.min(o.durationSeconds, Math.floor(elapsed() / 1000)), { ok, failed, inFlight });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(running);
    bar?.update(o.durationSeconds, { ok, failed, inFlight });
    bar?.stop();

    const byKind = Object.fromEntries((Object.keys(mix) as Kind[]).map((k) => [k, recorder.figures((r) => r.kind === k)])) as Partial<Record<Kind, Figures>>;
    const overall = recorder.figures();
    let drillFigures: DrillFigures | undefined;
    if (drill) {
      const after = recorder.results.filter((r) => !r.ok && r.endedMs >= drill!.atMs);
      drillFigures = {
        atSecond: Math.round(drill.atMs / 100) / 10,
        action: drill.action,
        failedAfter: after.length,
        firstFailureAfterMs: after.length ? Math.round(Math.min(...after.map((r) => r.endedMs)) - drill.atMs) : null,
        windowMs: after.length ? Math.round(Math.max(...after.map((r) => r.endedMs)) - drill.atMs) : 0,
      };
    }
    const result: LoadtestResult = {
      ...overall,
      byKind,
      skipped: recorder.skipped,
      errors: Object.fromEntries(recorder.errors()),
      ...(drillFigures ? { drill: drillFigures } : {}),
    };
    if (o.report) {
      const seconds = Math.max(1, Math.round(o.durationSeconds));
      writeFileSync(
        o.report,
        renderReport({
          title: 'Steadfast load test',
          url: o.url,
          tenant: o.tenant,
          startedAt: new Date(Date.now() - elapsed()).toISOString().replace(/\.\d+Z$/, 'Z'),
          rate: o.rate,
          durationSeconds: o.durationSeconds,
          mix,
          users: pool.users.length,
          overall,
          byKind,
          errors: recorder.errors(),
          timeline: recorder.timeline(seconds),
          drill: drillFigures,
        }),
      );
    }
    if (o.json) io.out(JSON.stringify(result) + '\n');
    else io.out(summaryTable(result, mix, interrupted));
    return result;
  } finally {
    process.off('SIGINT', onSigint);
    if (!o.keepUsers) {
      const removed = await pool.remove();
      if (!o.json) io.err(`removed ${removed} of ${pool.users.length} temporary users\n`);
    }
    await sms?.close();
    await http.close();
  }
}

function summaryTable(r: LoadtestResult, mix: Partial<Record<Kind, number>>, interrupted: boolean): string {
  const rows: string[][] = [['journey', 'share', 'offered', 'succeeded', 'failed', 'p50 ms', 'p99 ms']];
  for (const [kind, f] of Object.entries(r.byKind) as [Kind, Figures][])
    rows.push([KIND_NAMES[kind], `${mix[kind]}%`, ...[f.offered, f.succeeded, f.failed, f.p50Ms, f.p99Ms].map(String)]);
  rows.push(['all', '', ...[r.offered, r.succeeded, r.failed, r.p50Ms, r.p99Ms].map(String)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const failRate = r.offered ? (100 * r.failed) / r.offered : 0;
  lines.push(
    '',
    `${failRate.toFixed(2)}% of journeys failed${interrupted ? ' (interrupted)' : ''}${r.skipped ? `; ${r.skipped} not started (no free user or too many in flight: the generator's limit)` : ''}`,
  );
  for (const [label, n] of Object.entries(r.errors)) lines.push(`  ${String(n).padStart(6)} × ${label}`);
  if (r.drill) {
    lines.push(
      '',
      `failover drill at ${r.drill.atSecond} s (${r.drill.action}): ${r.drill.failedAfter} journeys failed after it` +
        (r.drill.firstFailureAfterMs !== null
          ? `; failures from +${r.drill.firstFailureAfterMs} ms to +${r.drill.windowMs} ms (failover window ${(r.drill.windowMs / 1000).toFixed(1)} s)`
          : '; no failover window was visible'),
    );
  }
  return lines.join('\n') + '\n';
}
