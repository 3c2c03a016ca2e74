import type { SigninReason } from '../../src/activity/signin-reasons.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import { registrationCoverage } from '../../src/methods/registration-coverage.ts';
import { HOUR_MS } from '../../src/activity/signin-activity.ts';
import type { DeliveryEvents } from '../../src/delivery/provider-chain.ts';
import { backends, type Backend } from '../helpers/backends.ts';

const quiet: DeliveryEvents = { attempt: () => {}, breaker: () => {} };

/** The counts behind the console's overview, on both backends, with a clock the test moves. */
for (const spec of backends) {
  describe.runIf(await spec.available())(`console overview counts on ${spec.name}`, () => {
    let backend: Backend;
    let s: Services;
    // 12:30 UTC: the window is 13:00 yesterday to 13:00 today, the current hour last.
    const clock = new ManualClock(Date.UTC(2026, 0, 10, 12, 30));

    beforeAll(async () => {
      backend = await spec.create();
      s = await buildServices(backend.config, {
        clock,
        ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}),
        ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}),
      });
    });
    afterAll(async () => {
      await s?.close();
      await backend?.cleanup();
    });

    it("counts a tenant's last day of sign-ins by hour, reason and method, and nothing of another tenant's", async () => {
      const [corp, other] = [await s.tenants.create('corp', 'Corp'), await s.tenants.create('other', 'Other')];
      const at = async (
        ms: number,
        tenantId: string,
        outcome: 'success' | 'failure',
        reason: SigninReason,
        method: string | undefined,
        step: 'password' | 'second-factor' = 'password',
      ) => {
        clock.set(ms);
        await s.events.record({ tenantId, userId: null, username: 'x', step, outcome, reason, method });
      };
      const t = (h: number, m = 0) => Date.UTC(2026, 0, 10, h, m);
      await at(t(12, 30) - 25 * HOUR_MS, corp.id, 'failure', 'invalid_credentials', 'password'); // before the window
      await at(t(13) - 24 * HOUR_MS, corp.id, 'success', 'ok', 'webauthn', 'second-factor'); // first moment of it
      await at(t(8, 10), corp.id, 'success', 'factor_required', 'password'); // a step, not a sign-in
      await at(t(8, 11), corp.id, 'success', 'ok', 'totp', 'second-factor');
      await at(t(8, 20), corp.id, 'failure', 'invalid_code', 'totp', 'second-factor');
      await at(t(12, 29), corp.id, 'failure', 'invalid_credentials', 'password');
      await at(t(12, 29), corp.id, 'failure', 'invalid_credentials', 'password');
      await at(t(12, 29), corp.id, 'success', 'remembered_device', 'password');
      await at(t(12, 29), other.id, 'failure', 'account_disabled', 'password');
      clock.set(t(12, 30));

      const day = await s.signinActivity.lastDay(corp.id);
      expect(day.from).toBe(t(13) - 24 * HOUR_MS);
      expect(day.until).toBe(t(13));
      expect(day.hours).toHaveLength(24);
      expect(day.hours[0]).toEqual({ start: day.from, succeeded: 1, failed: 0 });
      expect(day.hours[19]).toEqual({ start: t(8), succeeded: 1, failed: 1 });
      expect(day.hours[23]).toEqual({ start: t(12), succeeded: 1, failed: 2 });
      expect(day.hours.reduce((n, h) => n + h.succeeded + h.failed, 0)).toBe(6);
      expect(day.failures).toEqual([
        { reason: 'invalid_credentials', count: 2 },
        { reason: 'invalid_code', count: 1 },
      ]);
      expect(day.methods).toEqual([
        { method: 'password', count: 1 },
        { method: 'totp', count: 1 },
        { method: 'webauthn', count: 1 },
      ]);

      // An hour later the window moves on: the first hour's sign-in leaves it.
      clock.set(t(13, 5));
      const later = await s.signinActivity.lastDay(corp.id);
      expect(later.hours[22]).toEqual({ start: t(12), succeeded: 1, failed: 2 });
      expect(later.hours.reduce((n, h) => n + h.succeeded, 0)).toBe(2);
      expect((await s.signinActivity.lastDay(other.id)).failures).toEqual([{ reason: 'account_disabled', count: 1 }]);
    });

    it.runIf(spec.name === 'sqlite+memory')('reads the day through the (tenant_id, at) index, never the whole table', async () => {
      const compiled = s.signinActivity.countsQuery('t', 0, HOUR_MS).compile();
      const { rows } = await s.durable.db.executeQuery({ ...compiled, sql: `explain query plan ${compiled.sql}` });
      expect(JSON.stringify(rows)).toMatch(/SEARCH signin_events USING (COVERING )?INDEX signin_events_tenant_at \(tenant_id=\? AND at>\? AND at<\?\)/);
      expect(JSON.stringify(rows)).not.toMatch(/SCAN signin_events/);
    });

    it('counts registration coverage from the method descriptors, active users only, scoped by tenant', async () => {
      const tenant = await s.tenants.create('cover', 'Cover');
      const user = async (username: string) => (await s.users.create(tenant.id, { username })).id;
      const method = (userId: string, type: string, state: 'active' | 'pending' = 'active') =>
        s.credentials.insert({
          tenantId: tenant.id,
          userId,
          type,
          label: type,
          state,
          secret: null,
          externalId: type === 'webauthn' ? `${userId}-key` : undefined,
        });
      const phone = await user('phone');
      await method(phone, 'sms');
      await method(phone, 'voice');
      const strong = await user('strong');
      await method(strong, 'sms');
      await method(strong, 'webauthn');
      const app = await user('app');
      await method(app, 'totp');
      await method(app, 'sms');
      const none = await user('none');
      await method(none, 'totp', 'pending');
      await method(none, 'recovery-codes');
      const gone = await user('gone');
      await s.users.update(tenant.id, gone, { status: 'disabled' });
      const expected = { users: 4, phishingResistant: 1, otherMethods: 1, phoneOnly: 1, noMethod: 1 };
      expect(await registrationCoverage(s.durable.db, tenant.id)).toEqual(expected);
      // As the console counts it: in the report worker on SQLite.
      expect(await s.coverage(tenant.id)).toEqual(expected);
      expect(await registrationCoverage(s.durable.db, 'no-such-tenant')).toEqual({
        users: 0,
        phishingResistant: 0,
        otherMethods: 0,
        phoneOnly: 0,
        noMethod: 0,
      });
    });

    it("keeps each delivery provider's hours: deliveries and failures, not refused destinations", async () => {
      const now = Date.UTC(2026, 0, 11, 9, 15);
      clock.set(now);
      const events = s.deliveryHealth.counting(quiet);
      events.attempt('sms', 'primary', 'delivered', 0.1);
      events.attempt('sms', 'primary', 'delivered', 0.1);
      events.attempt('sms', 'primary', 'unavailable', 1.5, 'HTTP 503');
      events.attempt('sms', 'primary', 'rejected', 0.1, 'HTTP 400');
      events.attempt('sms', 'backup', 'skipped', 0, 'breaker open');
      clock.set(now - 3 * HOUR_MS);
      events.attempt('email', 'mail', 'delivered', 0.2);
      clock.set(now);

      const [primary, backup, mail] = await s.deliveryHealth.lastDay([
        { channel: 'sms', provider: 'primary' },
        { channel: 'sms', provider: 'backup' },
        { channel: 'email', provider: 'mail' },
      ]);
      expect(primary!.hours).toHaveLength(24);
      expect(primary!.hours[23]).toEqual({ start: Date.UTC(2026, 0, 11, 9), delivered: 2, failed: 1 });
      expect(primary!.hours.slice(0, 23).every((h) => h.delivered + h.failed === 0)).toBe(true);
      expect(backup!.hours[23]).toMatchObject({ delivered: 0, failed: 1 });
      expect(mail!.hours[20]).toEqual({ start: Date.UTC(2026, 0, 11, 6), delivered: 1, failed: 0 });
    });
  });
}
