import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeyRing } from '../../src/crypto/key-ring.ts';
import { ConfigSecrets } from '../../src/config/config-secrets.ts';
import { diffDocuments } from '../../src/config/config-diff.ts';
import { CanarySlicer } from '../../src/config/canary-slice.ts';
import { judgeCanary } from '../../src/config/canary-judge.ts';
import { parseRuntimeSettings, baselineSettings } from '../../src/config/runtime-settings.ts';
import { parseDeliveryConfig } from '../../src/delivery/delivery-config.ts';
import { uptimeDays } from '../../src/incidents/uptime.ts';
import type { SliceStats } from '../../src/config/slice-health.ts';
import type { Incident } from '../../src/incidents/incidents.ts';

const baseline = baselineSettings({ delivery: parseDeliveryConfig(undefined, []), admission: { limit: 16, queueLimit: 64, maxWaitMs: 30 } });

const stats = (over: Partial<SliceStats> = {}): SliceStats => ({
  requests: 0,
  serverErrors: 0,
  unavailable: 0,
  steps: {},
  deliveries: { attempts: 0, failures: 0 },
  breakerOpens: 0,
  latenciesMs: [],
  ...over,
});

describe('runtime settings validation', () => {
  it('names every problem at once and applies nothing', () => {
    const { problems } = parseRuntimeSettings(
      {
        admission: { limit: 0, speed: 1 },
        cache: { tenantSeconds: 600 },
        delivery: { sms: [{ name: 'x', type: 'webhook', url: 'ftp://h', secret: 'short' }] },
        port: 80,
      },
      baseline,
    );
    expect(problems).toEqual([
      'port is not a runtime setting (expected delivery, admission, cache; start-up settings such as ports and store URLs stay in the environment)',
      'delivery.sms[0].url must be an http(s) URL',
      'delivery.sms[0].secret must be at least 16 characters',
      'admission.speed is not a setting (expected limit, queueLimit, maxWaitMs)',
      'admission.limit must be a whole number from 1 to 1000000, not 0',
      'cache.tenantSeconds must be a whole number from 1 to 60, not 600',
    ]);
  });

  it('keeps the baseline for sections left out', () => {
    const { settings, problems } = parseRuntimeSettings({ admission: { limit: 4 } }, baseline);
    expect(problems).toEqual([]);
    expect(settings.admission).toEqual({ limit: 4, queueLimit: 16, maxWaitMs: 30 });
    expect(settings.delivery).toBe(baseline.delivery);
  });

  it('never throws on any input', () => {
    fc.assert(fc.property(fc.jsonValue(), (doc) => void parseRuntimeSettings(doc, baseline)));
  });
});

describe('configuration secrets', () => {
  const secrets = new ConfigSecrets(new KeyRing(randomBytes(32)));
  const doc = { delivery: { sms: [{ name: 'hook', type: 'webhook', url: 'https://h', secret: 'the-webhook-secret-1234' }] } };

  it('are sealed in the stored document, opened for the node, and shown as "(sealed)"', () => {
    const { sealed, missing } = secrets.seal(doc, undefined);
    expect(missing).toEqual([]);
    expect(JSON.stringify(sealed)).not.toContain('the-webhook-secret-1234');
    expect(secrets.open(sealed)).toEqual(doc);
    expect(JSON.stringify(ConfigSecrets.redact(sealed))).toBe(
      JSON.stringify({ delivery: { sms: [{ name: 'hook', type: 'webhook', url: 'https://h', secret: '(sealed)' }] } }),
    );
  });

  it('"(sealed)" keeps the previous secret of the same provider, and is a problem where there is none', () => {
    const { sealed: previous } = secrets.seal(doc, undefined);
    const shown = ConfigSecrets.redact(previous);
    const again = secrets.seal(shown, previous);
    expect(secrets.open(again.sealed)).toEqual(doc);
    expect(secrets.seal({ delivery: { sms: [{ name: 'other', secret: '(sealed)' }] } }, undefined).missing).toEqual(['delivery.sms[0].secret']);
  });

  it('show in a diff as changed, never with their value', () => {
    const changes = diffDocuments(doc, { delivery: { sms: [{ ...doc.delivery.sms[0], secret: 'another-secret-value-99' }] }, admission: { limit: 3 } });
    expect(changes).toEqual([
      { path: 'admission.limit', after: '3' },
      { path: 'delivery.sms[0].secret', before: '"(sealed)"', after: '"(sealed)"' },
    ]);
    expect(JSON.stringify(changes)).not.toMatch(/another-secret|the-webhook-secret/);
  });
});

describe('canary slices', () => {
  it('are stable per client and hold close to their share of many clients', () => {
    const slicer = new CanarySlicer(randomBytes(32));
    expect(slicer.bucket('acme', '10.0.0.1')).toBe(slicer.bucket('acme', '10.0.0.1'));
    const clients = 100_000;
    let inTen = 0;
    let inFive = 0;
    let fiveOutsideTen = 0;
    for (let i = 0; i < clients; i++) {
      const bucket = slicer.bucket('acme', `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
      if (CanarySlicer.inCanary(bucket, 10)) inTen++;
      // A smaller canary is part of the larger one: raising the share keeps the same people in it.
      if (CanarySlicer.inCanary(bucket, 5)) {
        inFive++;
        if (!CanarySlicer.inCanary(bucket, 10)) fiveOutsideTen++;
      }
    }
    expect(fiveOutsideTen).toBe(0);
    expect(Math.abs(inTen / clients - 0.1)).toBeLessThan(0.005);
    expect(Math.abs(inFive / clients - 0.05)).toBeLessThan(0.005);
    expect(CanarySlicer.inCanary(undefined, 50)).toBe(false);
  });
});

describe('the canary judge', () => {
  it('rolls back a clear regression and names it', () => {
    const verdict = judgeCanary(stats({ requests: 20, unavailable: 12 }), stats({ requests: 200, unavailable: 2 }));
    expect(verdict.regressed).toBe(true);
    expect(verdict.reasons[0]).toMatch(/^503 rate: 60\.0% on the canary against 1\.0% on the rest/);
  });

  it('does not roll back on chance or on too few requests', () => {
    expect(judgeCanary(stats({ requests: 30, unavailable: 2 }), stats({ requests: 300, unavailable: 10 })).regressed).toBe(false);
    expect(judgeCanary(stats({ requests: 5, unavailable: 5 }), stats({ requests: 300 })).regressed).toBe(false);
    expect(
      judgeCanary(stats({ steps: { 'signin:password': { total: 10, failed: 10 } } }), stats({ steps: { 'signin:password': { total: 100, failed: 0 } } }))
        .regressed,
    ).toBe(true);
  });

  it('compares p99 and breaker opens', () => {
    const fast = Array.from({ length: 100 }, () => 20);
    const slow = Array.from({ length: 100 }, () => 900);
    expect(judgeCanary(stats({ latenciesMs: slow }), stats({ latenciesMs: fast })).reasons).toEqual(['p99 900 ms on the canary against 20 ms on the rest']);
    expect(judgeCanary(stats({ breakerOpens: 1 }), stats()).regressed).toBe(true);
  });

  it('does not take one slow request, or a "p99" of a few requests, for a latency regression', () => {
    const fast = Array.from({ length: 200 }, () => 20);
    const oneHiccup = [...Array.from({ length: 199 }, () => 20), 900];
    expect(judgeCanary(stats({ latenciesMs: oneHiccup }), stats({ latenciesMs: fast })).regressed).toBe(false);
    const fourHiccups = [...Array.from({ length: 196 }, () => 20), 900, 900, 900, 900];
    expect(judgeCanary(stats({ latenciesMs: fourHiccups }), stats({ latenciesMs: fast })).regressed).toBe(false);
    const fiveSlow = [...Array.from({ length: 195 }, () => 20), 900, 900, 900, 900, 900];
    expect(judgeCanary(stats({ latenciesMs: fiveSlow }), stats({ latenciesMs: fast })).regressed).toBe(true);
    expect(judgeCanary(stats({ latenciesMs: Array.from({ length: 20 }, () => 900) }), stats({ latenciesMs: fast })).regressed).toBe(false);
  });
});

describe('uptime days', () => {
  const DAY = 86_400_000;
  const now = Date.UTC(2026, 5, 10, 12);
  const incident = (component: string, start: number, end: number | null): Incident => ({
    id: 'x',
    tenantId: '',
    component,
    title: 't',
    advice: 'a',
    source: 'auto',
    startedAt: start,
    expectedEndAt: null,
    endedAt: end,
    updates: [],
    updatedAt: start,
  });

  it('covers each day with the share of it in incidents, overlaps counted once', () => {
    const today = Date.UTC(2026, 5, 10);
    const days = uptimeDays(
      [
        incident('sms', today - DAY + 6 * 3_600_000, today - DAY + 12 * 3_600_000),
        incident('sms', today - DAY + 9 * 3_600_000, today - DAY + 18 * 3_600_000),
        incident('email', today - DAY, today),
      ],
      'sms',
      now,
    );
    expect(days).toHaveLength(90);
    expect(days.at(-2)).toEqual({ day: today - DAY, down: 0.5 });
    expect(days.at(-1)).toEqual({ day: today, down: 0 });
    const ongoing = uptimeDays([incident('sms', today + 6 * 3_600_000, null)], 'sms', now);
    expect(ongoing.at(-1)!.down).toBe(0.5);
  });
});
