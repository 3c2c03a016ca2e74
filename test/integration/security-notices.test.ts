import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { codeIn, startSmtpStandIn, type Received, type SmtpStandIn } from '../helpers/vendor-standins.ts';
import { NOTICES_PER_WINDOW } from '../../src/activity/security-notices.ts';

const PASSWORD = 'correct horse battery staple';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** What `find` finds, waiting up to 5 s for it. */
const waitFor = async <T>(find: () => T | undefined): Promise<T> => {
  for (let waited = 0; waited < 5000; waited += 20) {
    const found = find();
    if (found !== undefined) return found;
    await sleep(20);
  }
  throw new Error('not found within 5 s');
};

/**
 * A user is told by email of every change to their way in, whoever makes it
 * (themselves, an administrator, a token, a thief in their session): through
 * a real SMTP server on loopback, as the service's email provider.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`security notices on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let mail: SmtpStandIn;
    let adminToken: string;

    /** The notices that reached `to`, waiting up to 5 s for `count` of them. */
    const noticesTo = async (to: string, count: number): Promise<Received[]> => {
      for (let waited = 0; waited < 5000; waited += 20) {
        const got = mail.received.filter((m) => m.to === to);
        if (got.length >= count) return got;
        await sleep(20);
      }
      return mail.received.filter((m) => m.to === to);
    };
    /** A user with a password and an address; signed in to register, their registration session. */
    const newUser = async (username: string) => {
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const user = await server.services.admin.createUser(tenant, 'cli', { username, password: PASSWORD, email: `${username}@example.test` });
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(start.body.state).toBe('registration_required');
      return { id: user.id, address: `${username}@example.test`, registration: start.body.session.token as string };
    };
    const addTotp = async (token: string) => {
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp', label: 'My phone' }, token);
      expect(added.status).toBe(201);
      const confirmed = await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, Date.now()) }, token);
      expect(confirmed.status).toBe(200);
      return { id: added.body.id as string, secret: added.body.secret as string };
    };

    beforeAll(async () => {
      mail = await startSmtpStandIn();
      const configFile = join(tmpdir(), `steadfast-notices-${process.pid}-${spec.name}.json`);
      writeFileSync(
        configFile,
        JSON.stringify({
          delivery: {
            email: [{ name: 'mail', type: 'smtp', host: '127.0.0.1', port: mail.port, from: 'Acme sign-in <no-reply@example.test>', timeoutMs: 15000 }],
          },
        }),
      );
      backend = await spec.create({ STEADFAST_CONFIG: configFile });
      server = await startTestServer(backend);
      const tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await mail?.close();
    });

    it('tells the owner of a method added, never its secret, and of a password changed, never the password', async () => {
      const u = await newUser('notice-ada');
      const app = await addTotp(u.registration);
      const [added] = await noticesTo(u.address, 1);
      // By its kind, never its label: whoever holds a session names it (twenty-fourth round: a label with a link in it).
      expect(added!.text).toContain('A sign-in method was added to your account: Authenticator app.');
      expect(added!.text).not.toContain('My phone');
      expect(added!.text).toContain('by you, or someone signed in as you');
      expect(added!.text).not.toContain(app.secret);
      expect(added!.text).not.toMatch(/https?:\/\//);

      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'notice-ada', password: PASSWORD });
      const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(app.secret, Date.now() + 30_000),
      });
      const NEW = 'a brand new passphrase 42';
      expect((await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: NEW }, done.body.session.token)).status).toBe(200);
      const all = await noticesTo(u.address, 2);
      expect(all[1]!.text).toContain('The password of your account was changed.');
      expect(all.map((m) => m.text).join('\n')).not.toContain(NEW);
    });

    it('tells of an administrator’s reset and pass, by an administrator’s token, never the pass itself', async () => {
      const u = await newUser('notice-bob');
      await addTotp(u.registration);
      await noticesTo(u.address, 1);
      const reset = await api(server.url, 'POST', `/api/v1/admin/users/${u.id}/reset-methods`, { pass: { oneTime: true } }, adminToken);
      expect(reset.status).toBe(200);
      const all = await noticesTo(u.address, 3);
      const texts = all.map((m) => m.text).join('\n');
      expect(texts).toContain('Your sign-in methods were reset');
      expect(texts).toContain('A Temporary Access Pass was issued for your account, valid until');
      expect(texts).toContain('by an administrator’s API token');
      expect(texts).not.toContain(reset.body.pass.code);
      expect(texts.replace(/-/g, '')).not.toContain(reset.body.pass.code.replace(/-/g, ''));
    });

    it('sends one user at most its share in an hour, and nothing to a user without an address', async () => {
      const u = await newUser('notice-flood');
      const { id } = await addTotp(u.registration);
      // A thief in the session adds and removes methods in a loop: the owner's inbox is not flooded.
      for (let i = 0; i < NOTICES_PER_WINDOW + 4; i++) {
        const label = `loop ${i}`;
        expect((await api(server.url, 'PATCH', `/api/v1/me/methods/${id}`, { label }, u.registration)).status).toBeLessThan(500);
        const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, u.registration);
        if (added.status === 201) await api(server.url, 'DELETE', `/api/v1/me/methods/${added.body.id}`, undefined, u.registration);
      }
      await sleep(500);
      const flood = await noticesTo(u.address, NOTICES_PER_WINDOW + 1);
      expect(flood.length).toBe(NOTICES_PER_WINDOW);
      // The last one says it is the last: a flood cannot hide the change that follows it.
      expect(flood.filter((m) => m.text.includes('This is the last notice we send you this hour')).length).toBe(1);

      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const before = mail.received.length;
      await server.services.admin.createUser(tenant, 'cli', { username: 'no-address', password: PASSWORD });
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'no-address', password: PASSWORD });
      await addTotp(start.body.session.token);
      await sleep(300);
      expect(mail.received.length).toBe(before);
    });

    it('sends one inbox at most its share however many accounts name it (a leaked admin token making accounts)', async () => {
      // Found (twenty-fourth round): 25 accounts made with one address, each given passes, sent it 39 notices.
      for (let i = 0; i < 6; i++) {
        const email = i % 2 === 0 ? `Inbox+${i}@Example.test` : 'inbox@example.test';
        const made = await api(server.url, 'POST', '/api/v1/admin/users', { username: `inbox-${i}`, email }, adminToken);
        expect(made.status).toBe(201);
        for (let j = 0; j < 2; j++)
          expect((await api(server.url, 'POST', `/api/v1/admin/users/${made.body.id}/tap`, { minutes: 30 }, adminToken)).status).toBe(201);
      }
      await sleep(800);
      const inbox = mail.received.filter((m) => m.to.toLowerCase().replace(/\+\d+/, '') === 'inbox@example.test');
      expect(inbox.length).toBe(NOTICES_PER_WINDOW);
    });

    it('tells the address an account had when an administrator’s token changes it, and clears what a revoked token set', async () => {
      // Found (twenty-fifth round): a leaked token moved an account's address to its holder's; the owner was never
      // told, and every notice after, the take-back's too, went to the holder.
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const u = await newUser('readdressed');
      const leaked = await server.services.adminTokens.create(tenant.id, 'admin');
      const moved = await api(server.url, 'PATCH', `/api/v1/admin/users/${u.id}`, { email: 'holder@attacker.test', phone: '+15005550006' }, leaked.token);
      expect(moved.status).toBe(200);
      const [former] = await noticesTo(u.address, 1);
      expect(former!.text).toContain('The email address of your account was changed; notices like this one go to the new address.');
      expect(former!.text).toContain('by an administrator’s API token');
      expect(former!.text).not.toContain('holder@attacker.test');
      await noticesTo('holder@attacker.test', 1);
      // Many cheap entries after its change do not hide it from the take-back (twenty-sixth round: 505 of them did).
      for (let i = 0; i < 510; i++) await server.services.admin.revokeSessions(tenant, `admin-token:${leaked.id}`, u.id);

      await server.services.admin.revokeToken(tenant, 'cli', leaked.id);
      const after = (await server.services.users.get(tenant.id, u.id))!;
      expect([after.email, after.phone]).toEqual([null, null]);
      const [takenBack] = await server.services.audit.list(tenant.id, { limit: 1, userId: u.id, action: 'access.taken-back' });
      expect(takenBack!.details).toMatchObject({ contactCleared: ['email', 'phone'] });
      await sleep(300);
      // The take-back's notice did not go to the holder (the account has no address now).
      expect(mail.received.filter((m) => m.to === 'holder@attacker.test')).toHaveLength(1);
    });

    it('lets no other tenant use up the notices an inbox gets from this one (twenty-sixth round)', async () => {
      const elsewhere = await server.services.tenants.create('elsewhere', 'Elsewhere');
      const junk = await server.services.admin.createUser(elsewhere, 'cli', { username: 'junk', email: 'Carol+x@VICTIM.test' });
      for (let i = 0; i < NOTICES_PER_WINDOW + 2; i++) await server.services.admin.issuePass(elsewhere, 'cli', junk.id, { minutes: 30 });
      // (Moved to that inbox: the move is told there, and to the address it had.)
      const carol = await newUser('carol');
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      await server.services.admin.updateUser(tenant, 'cli', carol.id, { email: 'carol@victim.test' });
      await server.services.admin.issuePass(tenant, 'cli', carol.id, { minutes: 30 });
      const got = await noticesTo('carol@victim.test', 2);
      expect(got.map((m) => m.text).join('\n')).toContain('A Temporary Access Pass was issued for your account');
    });

    it('sends a sign-in code at once while a batch of notices waits its turn behind it, over a slow relay', async () => {
      // An administrator issues passes to a batch of people while someone signs in with an email code. Sent all
      // at once, the notices filled the SMTP pool, the code queued behind every one of them, and on a slow
      // relay its send timed out (opening the provider's breaker for codes too).
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const u = await newUser('notice-rush');
      const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'email', to: 'rush-codes@example.test' }, u.registration);
      expect(enrol.status).toBe(201);
      const enrolCode = codeIn(await waitFor(() => mail.received.find((m) => m.to === 'rush-codes@example.test')));
      expect((await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: enrolCode }, u.registration)).status).toBe(200);
      // (The provider's timeout, 15 s here, is longer than this test holds a notice: a notice held past it is given
      // up and the next begins, which is right, but not what this test looks at.)
      const batch = [];
      for (let i = 0; i < 12; i++)
        batch.push(await server.services.admin.createUser(tenant, 'cli', { username: `batch-${i}`, email: `batch-${i}@example.test` }));
      await noticesTo(u.address, 1);

      // The relay takes the notices only when let go: none of them is done until the code has come.
      let letGo!: () => void;
      mail.watched.held = new Promise<void>((resolve) => (letGo = resolve));
      mail.watched.watching = /Temporary Access Pass was issued/;
      try {
        await Promise.all(batch.map((b) => server.services.admin.issuePass(tenant, 'cli', b.id, { minutes: 30 })));
        await waitFor(() => (mail.watched.mostAtOnce > 0 ? true : undefined));
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'notice-rush', password: PASSWORD });
        const sent = mail.received.length;
        const challenge = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/challenge`, { method: 'email' });
        expect(challenge.status).toBe(200);
        const code = await waitFor(() => mail.received.slice(sent).find((m) => m.to === 'rush-codes@example.test'));
        expect(mail.received.filter((m) => m.to.startsWith('batch-'))).toHaveLength(0);
        const verify = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, { method: 'email', code: codeIn(code) });
        expect(verify.status).toBe(200);
      } finally {
        letGo();
        mail.watched.held = undefined;
      }
      // Every notice still went, one at a time.
      for (const [i] of batch.entries()) expect(await noticesTo(`batch-${i}@example.test`, 1)).toHaveLength(1);
      expect(mail.watched.mostAtOnce).toBe(1);
      mail.watched.watching = undefined;
    });

    it('lets the change stand when the email provider is down, and counts the notice as failed', async () => {
      const u = await newUser('notice-down');
      await mail.close();
      try {
        await addTotp(u.registration);
        let failed = '';
        for (let waited = 0; waited < 5000 && !failed.includes('outcome="failed"'); waited += 50) {
          failed = await server.services.metrics.registry.getSingleMetricAsString('steadfast_security_notices_total');
          await sleep(50);
        }
        expect(failed).toMatch(/steadfast_security_notices_total\{action="method.added",outcome="failed"\} [1-9]/);
        expect((await api(server.url, 'GET', '/api/v1/me/methods', undefined, u.registration)).body).toEqual(
          expect.arrayContaining([expect.objectContaining({ type: 'totp', state: 'active' })]),
        );
      } finally {
        mail = await startSmtpStandIn();
      }
    });
  });
}
