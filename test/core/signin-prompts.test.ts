import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import type { Method } from '../../src/methods/method.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { PasswordHasher } from '../../src/directory/password-hasher.ts';
import { RememberedDevices } from '../../src/sessions/remembered-devices.ts';
import type { RequestContext } from '../../src/signin/signin-service.ts';
import { flowKey } from '../../src/signin/flow.ts';
import { createUser, freshSources, rejection, startCoreServices, withPolicy, type CoreServices, liveSessionToken } from './core-services.ts';

/**
 * What the sign-in state machine (signin/signin-service.ts) answers around the
 * second factor's check, at the level of its own promises (no HTTP, cheap
 * Argon2id, SQLite): making a factor ready (`prepareFactor`: which method, the
 * notices when a code went out already or a channel is down, the fallback),
 * `challenge`, `status`, the choices offered, the password step's account key
 * and the parts of the budget a browser spends, a pass in place of the
 * password, and the background rehash. A method's channel going down or its
 * answers are played by patching that method's object for one test.
 */
const PASSWORD = 'correct horse battery staple';

describe('the sign-in prompts on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const ctx = freshSources('198.20', 'prompts-test');

  const newUser = async (extra: Partial<{ breakGlass: boolean; withPassword: boolean; username: string }> = {}, t: Tenant = tenant) => {
    const { withPassword = true, ...rest } = extra;
    return createUser(s, t, { ...(withPassword ? { passwordHash: await s.hasher.hash(PASSWORD) } : {}), ...rest });
  };
  /** An active credential of the type, straight in the store (its secret is never used here). */
  const addCredential = (user: User, type: string, label: string, t: Tenant = tenant) =>
    s.credentials.insert({ tenantId: t.id, userId: user.id, type, label, state: 'active', activation: 'any' });
  const factorFlow = async (user: User, t: Tenant = tenant, c: RequestContext = ctx()) => {
    const step = await s.signin.passwordStep(t, user.username, PASSWORD, c);
    expect(step.kind).toBe('factor');
    return (step as { flow: string }).flow;
  };
  /** Runs `fn` with some of a method's members replaced, and puts them back. */
  const patched = async <T>(type: string, over: Partial<Method>, fn: () => Promise<T>): Promise<T> => {
    const method = s.methods.get(type) as unknown as Record<string, unknown>;
    const saved = Object.fromEntries(Object.keys(over).map((k) => [k, method[k]]));
    const had = new Set(Object.keys(over).filter((k) => k in method));
    Object.assign(method, over);
    try {
      return await fn();
    } finally {
      for (const k of Object.keys(over)) {
        if (had.has(k)) method[k] = saved[k];
        else delete method[k];
      }
    }
  };
  const smsUp = (challenge: Method['challenge']): Partial<Method> => ({ available: () => true, challenge });
  const throwing =
    (err: unknown): Method['challenge'] =>
    async () => {
      throw err;
    };

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('prompts');
    otherTenant = await s.tenants.create('prompts-other');
  });
  afterAll(() => core?.stop());

  describe('prepareFactor', () => {
    it('starts the first choice, or the one asked for by credential id or type, naming the credential it challenged', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      await addCredential(user, 'totp', 'Tablet app');
      const sms = await addCredential(user, 'sms', 'Phone');
      const flow = await factorFlow(user);
      const methods = await s.signin.flowMethods(tenant, { id: flow });
      expect(methods.map((m) => [m.type, m.available])).toEqual([
        ['totp', true],
        ['totp', true],
        ['sms', false],
      ]);
      const [first, second, text] = methods as [(typeof methods)[0], (typeof methods)[0], (typeof methods)[0]];
      expect(text.id).toBe(sms.id);
      // Nothing asked for, or something that is no choice: the first choice, challenged by its own id (one credential, not every app).
      for (const preferred of [undefined, 'nothing-like-it']) {
        expect(await s.signin.prepareFactor(tenant, flow, preferred, ctx(), { send: true }), String(preferred)).toEqual({
          flow,
          methods,
          chosen: first,
          challenge: { method: first.id, type: 'totp' },
        });
      }
      // By id: that credential, though it is not the first.
      expect(await s.signin.prepareFactor(tenant, flow, second.id, ctx(), { send: true })).toEqual({
        flow,
        methods,
        chosen: second,
        challenge: { method: second.id, type: 'totp' },
      });
      // A method that sends nothing is started even when nothing is to be sent (a wrong code was typed).
      expect(await s.signin.prepareFactor(tenant, flow, second.id, ctx(), { send: false })).toEqual({
        flow,
        methods,
        chosen: second,
        challenge: { method: second.id, type: 'totp' },
      });
      // By type or by id, a method that sends is not started again when nothing is to be sent: the form stays, with no notice.
      let started = 0;
      await patched(
        'sms',
        smsUp(async () => {
          started++;
          return {};
        }),
        async () => {
          for (const preferred of ['sms', sms.id]) {
            const methodsNow = await s.signin.flowMethods(tenant, { id: flow });
            const chosen = methodsNow.find((m) => m.type === 'sms');
            expect(await s.signin.prepareFactor(tenant, flow, preferred, ctx(), { send: false }), preferred).toEqual({
              flow,
              methods: methodsNow,
              chosen,
              challenge: {},
            });
          }
        },
      );
      expect(started).toBe(0);
    });

    it('falls back to a method that works when the chosen channel is down, and says why', async () => {
      const user = await newUser();
      const totp = await addCredential(user, 'totp', 'Phone app');
      await addCredential(user, 'sms', 'Phone');
      const flow = await factorFlow(user);
      await patched('sms', smsUp(throwing(new AppError('method-unavailable', 'Codes by text message cannot be sent right now'))), async () => {
        const before = await s.signin.flowMethods(tenant, { id: flow });
        expect(before.every((m) => m.available)).toBe(true);
        const prompt = await s.signin.prepareFactor(tenant, flow, 'sms', ctx(), { send: true });
        expect(prompt).toEqual({
          flow,
          methods: before.map((m) => (m.type === 'sms' ? { ...m, available: false } : m)),
          chosen: expect.objectContaining({ id: totp.id, available: true }),
          challenge: { method: totp.id, type: 'totp' },
          notice: { kind: 'error', text: "Text message can't be used right now. Use another way to sign in." },
        });
      });
    });

    it('answers no-way-in when the only method that seemed to work turns out down, naming it', async () => {
      const user = await newUser();
      await addCredential(user, 'sms', 'My phone');
      await patched('sms', smsUp(throwing(new AppError('method-unavailable'))), async () => {
        const flow = await factorFlow(user);
        const [only] = await s.signin.flowMethods(tenant, { id: flow });
        expect(await s.signin.prepareFactor(tenant, flow, undefined, ctx(), { send: true })).toEqual({
          kind: 'no-way-in',
          methods: [{ ...only, available: false }],
          retryAfter: 60,
          why: "Text message can't be used right now.",
        });
      });
    });

    it('keeps the form for the code the person has when a code went out moments ago or too many did, and says when to ask again', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      await addCredential(user, 'sms', 'Phone');
      const flow = await factorFlow(user);
      const cases: [AppError, string][] = [
        [new AppError('code-recently-sent', undefined, {}, 20), 'A code was sent moments ago; use that one. You can ask for a new code in 20 seconds.'],
        [new AppError('code-recently-sent'), 'A code was sent moments ago; use that one. You can ask for a new code in 30 seconds.'],
        [new AppError('send-limit', undefined, {}, 900), 'Too many codes were sent. You can ask for a new code in 900 seconds.'],
        [new AppError('push-pending', 'Answer the request on your phone first'), 'Answer the request on your phone first'],
        [new AppError('push-limit'), 'Too many sign-in requests were sent to your device; wait, or use another method'],
      ];
      for (const [err, text] of cases) {
        await patched('sms', smsUp(throwing(err)), async () => {
          const methods = await s.signin.flowMethods(tenant, { id: flow });
          expect(await s.signin.prepareFactor(tenant, flow, 'sms', ctx(), { send: true }), err.code).toEqual({
            flow,
            methods,
            chosen: methods.find((m) => m.type === 'sms'),
            challenge: {},
            notice: { kind: 'error', text },
          });
        });
      }
    });

    it('passes any other failure on as it is', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      await addCredential(user, 'sms', 'Phone');
      const flow = await factorFlow(user);
      await patched('sms', smsUp(throwing(new AppError('invalid-request', 'no such number'))), async () => {
        expect(await rejection(s.signin.prepareFactor(tenant, flow, 'sms', ctx(), { send: true }))).toMatchObject({
          code: 'invalid-request',
          detail: 'no such number',
        });
      });
      const broken = new Error('provider exploded');
      await patched('sms', smsUp(throwing(broken)), async () => {
        expect(await rejection(s.signin.prepareFactor(tenant, flow, 'sms', ctx(), { send: true }))).toEqual({ code: 'not-an-app-error', err: broken });
      });
    });

    it('knows no passkey flow, and no flow of another tenant', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      const flow = await factorFlow(user);
      expect(await rejection(s.signin.prepareFactor(otherTenant, flow, undefined, ctx(), { send: true }))).toMatchObject({ code: 'flow-not-found' });
      const passkey = await s.signin.startPasskey(tenant, ctx());
      expect(await s.signin.flowMethods(tenant, { id: passkey.flow })).toEqual([]);
      expect(await rejection(s.signin.prepareFactor(tenant, passkey.flow, undefined, ctx(), { send: true }))).toMatchObject({ code: 'flow-not-found' });
    });
  });

  describe('challenge', () => {
    it('challenges one credential by id, every one of a type by type, and refuses a passkey flow', async () => {
      const user = await newUser();
      const a = await addCredential(user, 'totp', 'Phone app');
      await addCredential(user, 'totp', 'Tablet app');
      const flow = await factorFlow(user);
      expect(await s.signin.challenge(tenant, { id: flow }, a.id, ctx())).toEqual({ method: a.id, type: 'totp' });
      expect(await s.signin.challenge(tenant, { id: flow }, 'totp', ctx())).toEqual({ method: 'totp', type: 'totp' });
      const passkey = await s.signin.startPasskey(tenant, ctx());
      expect(await rejection(s.signin.challenge(tenant, { id: passkey.flow }, 'totp', ctx()))).toMatchObject({
        code: 'invalid-state',
        detail: 'a passkey sign-in was challenged when it started',
      });
    });

    it("answers a channel that is down with the user's other ways in as of now, and passes other refusals on", async () => {
      const user = await newUser();
      const totp = await addCredential(user, 'totp', 'Phone app');
      const sms = await addCredential(user, 'sms', 'Phone');
      const flow = await factorFlow(user);
      // Down before anything is tried (no provider): the others, not the one that is down.
      const down = await rejection(s.signin.challenge(tenant, { id: flow }, sms.id, ctx()));
      expect(down).toEqual({
        code: 'method-unavailable',
        retryAfter: undefined,
        detail: undefined,
        extra: { methods: [expect.objectContaining({ id: totp.id })] },
      });
      expect((down!.extra as { methods: unknown[] }).methods).toHaveLength(1);
      // Down when tried: the method's reason is kept.
      await patched('sms', smsUp(throwing(new AppError('method-unavailable', 'Codes by text message cannot be sent right now'))), async () => {
        expect(await rejection(s.signin.challenge(tenant, { id: flow }, 'sms', ctx()))).toEqual({
          code: 'method-unavailable',
          retryAfter: undefined,
          detail: 'Codes by text message cannot be sent right now',
          extra: { methods: [expect.objectContaining({ id: totp.id, available: true })] },
        });
      });
      // The method is told whose flow it is and who asks (for its send limits, and what an approval request shows).
      const asked: unknown[] = [];
      await patched(
        'sms',
        smsUp(async (candidates, flowContext) => {
          asked.push([candidates.map((c) => c.id), flowContext]);
          return { delivery: { channel: 'sms', to: '+1 ••• 42' } } as never;
        }),
        async () => {
          const c = ctx({ app: 'portal' });
          expect(await s.signin.challenge(tenant, { id: flow }, sms.id, c)).toEqual({
            method: sms.id,
            type: 'sms',
            delivery: { channel: 'sms', to: '+1 ••• 42' },
          });
          expect(asked).toEqual([[[sms.id], { flowId: flow, tenant, ip: c.ip, username: user.username, userAgent: 'prompts-test', app: 'portal' }]]);
        },
      );
      await patched('sms', smsUp(throwing(new AppError('code-recently-sent', undefined, { sentTo: 'x' }, 25))), async () => {
        expect(await rejection(s.signin.challenge(tenant, { id: flow }, 'sms', ctx()))).toMatchObject({
          code: 'code-recently-sent',
          retryAfter: 25,
          extra: { sentTo: 'x' },
        });
      });
      const broken = new Error('provider exploded');
      await patched('sms', smsUp(throwing(broken)), async () => {
        expect(await rejection(s.signin.challenge(tenant, { id: flow }, 'sms', ctx()))).toEqual({ code: 'not-an-app-error', err: broken });
      });
    });
  });

  describe('status', () => {
    it("tells where the first method with something to say stands, else none; nobody else's flow", async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      const flow = await factorFlow(user);
      expect(await s.signin.status(tenant, { id: flow })).toEqual({ state: 'none' });
      expect(await rejection(s.signin.status(otherTenant, { id: flow }))).toMatchObject({ code: 'flow-not-found' });
      const types = s.methods.types;
      expect(types.indexOf('push')).toBeLessThan(types.indexOf('totp'));
      let askedFor: unknown;
      await patched(
        'totp',
        {
          status: async (f) => {
            askedFor = f.flowId;
            return 'approved';
          },
        },
        async () => {
          expect(await s.signin.status(tenant, { id: flow })).toEqual({ state: 'approved', type: 'totp' });
          expect(askedFor).toBe(flow);
          await patched('push', { status: async () => 'pending' }, async () => {
            expect(await s.signin.status(tenant, { id: flow })).toEqual({ state: 'pending', type: 'push' });
          });
        },
      );
    });
  });

  describe('the choices offered', () => {
    it('offers no pass where the tenant does not allow them, and none under tap-only to a user with no method at all', async () => {
      const user = await newUser();
      const totp = await addCredential(user, 'totp', 'Phone app');
      await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      const flow = await factorFlow(user);
      expect(await s.signin.flowMethods(tenant, { id: flow })).toEqual([
        expect.objectContaining({ id: totp.id }),
        { id: 'tap', type: 'tap', label: 'Temporary Access Pass', available: true, default: false },
      ]);
      const noTap = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'tap') });
      expect((await s.signin.flowMethods(noTap, { id: flow })).map((m) => m.id)).toEqual([totp.id]);

      // Nothing registered and no pass: tap-only does not invent one; the user registers.
      const bare = await newUser();
      const tapOnly = withPolicy(tenant, { failMode: 'tap-only' });
      expect(await s.signin.passwordStep(tapOnly, bare.username, PASSWORD, ctx())).toMatchObject({ kind: 'register', methods: [] });
      expect(await s.signin.choicesFor(tapOnly, bare.id)).toEqual([]);
    });

    it('offers no method whose set-up was never finished, and counts none as a way in', async () => {
      const user = await newUser();
      await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'totp', label: 'Half set up', state: 'pending', activation: 'any' });
      expect(await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx())).toMatchObject({ kind: 'register', methods: [] });
      const totp = await addCredential(user, 'totp', 'Phone app');
      expect((await s.signin.choicesFor(tenant, user.id)).map((m) => m.id)).toEqual([totp.id]);
    });

    it('offers a pass under tap-only only when none of the methods works, not when one of several does not', async () => {
      const user = await newUser();
      const totp = await addCredential(user, 'totp', 'Phone app');
      const sms = await addCredential(user, 'sms', 'Phone');
      const tapOnly = withPolicy(tenant, { failMode: 'tap-only' });
      expect((await s.signin.choicesFor(tapOnly, user.id)).map((m) => [m.id, m.available])).toEqual([
        [totp.id, true],
        [sms.id, false],
      ]);
    });

    it('refuses a flow whose methods can none be used now, naming them, and asks again in a minute', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      const sms = await addCredential(user, 'sms', 'Phone');
      const flow = await factorFlow(user);
      const noTotp = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'totp') });
      expect(await rejection(s.signin.flowMethods(noTotp, { id: flow }))).toEqual({
        code: 'no-usable-method',
        retryAfter: 60,
        detail: undefined,
        // (The authenticator app the policy left out is named too, as one that cannot be used.)
        extra: {
          methods: expect.arrayContaining([
            expect.objectContaining({ id: sms.id, available: false }),
            expect.objectContaining({ type: 'totp', available: false }),
          ]),
        },
      });
    });

    it('answers a pass asked for where none is a choice with the choices there are', async () => {
      const user = await newUser();
      const totp = await addCredential(user, 'totp', 'Phone app');
      const flow = await factorFlow(user);
      expect(await rejection(s.signin.challenge(tenant, { id: flow }, 'tap', ctx()))).toEqual({
        code: 'invalid-request',
        retryAfter: undefined,
        detail: "that method is not one of this sign-in's methods",
        extra: { methods: [expect.objectContaining({ id: totp.id })] },
      });
    });
  });

  describe('the password step', () => {
    it("keeps each tenant's accounts apart in the limits, though their names are the same", async () => {
      const user = await newUser();
      const twin = await newUser({ username: user.username }, otherTenant);
      const strict = (t: Tenant) => withPolicy(t, { mfaRequired: false, lockout: { accountFailures: 10, blockMinutes: 5 } });
      for (let i = 0; i < 12; i++) await rejection(s.signin.passwordStep(strict(tenant), user.username, 'wrong', ctx()));
      expect(await rejection(s.signin.passwordStep(strict(tenant), user.username, PASSWORD, ctx()))).toMatchObject({ code: 'too-many-requests' });
      expect(await s.signin.passwordStep(strict(otherTenant), twin.username, PASSWORD, ctx())).toMatchObject({ kind: 'done', session: { userId: twin.id } });
    });

    it("lets a remembered browser in while strangers have spent the account budget, and holds it for the tenant's block once it spends its own part", async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      const strict = withPolicy(tenant, { rememberedDeviceDays: 30, lockout: { accountFailures: 10, blockMinutes: 5 } });
      const remembered = await new RememberedDevices(s.durable.db, clock).remember(
        strict,
        user.id,
        'prompts-test',
        await liveSessionToken(s, tenant.id, user.id),
      );
      for (let i = 0; i < 12; i++) await rejection(s.signin.passwordStep(strict, user.username, 'wrong', ctx()));
      expect(await rejection(s.signin.passwordStep(strict, user.username, PASSWORD, ctx()))).toMatchObject({ code: 'too-many-requests' });
      const browser = ctx({ rememberedDevice: remembered!.token });
      expect(await s.signin.passwordStep(strict, user.username, PASSWORD, browser)).toMatchObject({ kind: 'done' });
      // Its part is a tenth (one guess here), blocked for the tenant's five minutes, not a day.
      expect(await rejection(s.signin.passwordStep(strict, user.username, 'wrong', browser))).toMatchObject({ code: 'invalid-credentials' });
      const held = await rejection(s.signin.passwordStep(strict, user.username, PASSWORD, browser));
      expect(held).toMatchObject({ code: 'too-many-requests' });
      expect(held!.retryAfter).toBeGreaterThan(4 * 60);
      expect(held!.retryAfter).toBeLessThanOrEqual(5 * 60);
    });

    it('audits a break-glass account let in by a remembered browser as a password sign-in', async () => {
      const user = await newUser({ breakGlass: true });
      await addCredential(user, 'totp', 'Phone app');
      const remembering = withPolicy(tenant, { rememberedDeviceDays: 30 });
      const remembered = await new RememberedDevices(s.durable.db, clock).remember(
        remembering,
        user.id,
        'prompts-test',
        await liveSessionToken(s, tenant.id, user.id),
      );
      expect((await s.signin.passwordStep(remembering, user.username, PASSWORD, ctx({ rememberedDevice: remembered!.token }))).kind).toBe('done');
      const [event] = (await s.events.listForUser(tenant.id, user.id, 5)).items;
      expect(event).toMatchObject({ step: 'password', outcome: 'success', reason: 'remembered_device', method: 'password' });
      expect((await s.audit.list(tenant.id, { limit: 5, userId: user.id, action: 'break-glass.signin' })).map((e) => e.details)).toEqual([
        { username: user.username, method: 'password' },
      ]);
    });

    it('counts guesses at one account by the name as the directory finds it, however it is spelt: \u0130 and i with a dot above are one letter', async () => {
      // Lower-cased, U+0130 is i + U+0307, which is also how a dotted i is typed; upper-cased, the two stay apart.
      // A key made another way than the directory's lookup would give one account two budgets.
      const user = await newUser({ username: `i\u0307lkay-${clock.now()}` });
      const spellings = [`\u0130lkay-${clock.now()}`, `i\u0307lkay-${clock.now()}`];
      for (const name of spellings) expect((await s.users.findByUsername(tenant.id, name))?.id, name).toBe(user.id);
      const one = ctx();
      const outcomes: string[] = [];
      for (let i = 0; i < 11; i++) outcomes.push((await rejection(s.signin.passwordStep(tenant, spellings[i % 2]!, 'wrong', one)))!.code);
      expect(outcomes).toEqual([...Array(10).fill('invalid-credentials'), 'too-many-requests']);
    });

    it('rehashes a password made with other Argon2id settings after a right answer, in the background', async () => {
      const old = new PasswordHasher({ params: { memoryCost: 2048, timeCost: 1, parallelism: 1 } });
      const oldHash = await old.hash(PASSWORD);
      expect(s.hasher.needsRehash(oldHash)).toBe(true);
      const user = await createUser(s, tenant, { passwordHash: oldHash });
      expect((await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx())).kind).toBe('done');
      let now: string | null | undefined;
      for (let i = 0; i < 200; i++) {
        now = (await s.users.findByUsername(tenant.id, user.username))?.passwordHash;
        if (now !== oldHash) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(now).not.toBe(oldHash);
      expect(s.hasher.needsRehash(now!)).toBe(false);
      expect(await s.hasher.verify(now!, PASSWORD)).toBe(true);
      // A hash made with the current settings is left as it is.
      const current = await newUser();
      const hash = (await s.users.findByUsername(tenant.id, current.username))?.passwordHash;
      expect((await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), current.username, PASSWORD, ctx())).kind).toBe('done');
      await new Promise((r) => setTimeout(r, 300));
      expect((await s.users.findByUsername(tenant.id, current.username))?.passwordHash).toBe(hash);
    });
    it('never puts back a password changed while its rehash ran, and a rehash is no change of password', async () => {
      const old = new PasswordHasher({ params: { memoryCost: 2048, timeCost: 1, parallelism: 1 } });
      const oldHash = await old.hash(PASSWORD);
      const user = await createUser(s, tenant, { passwordHash: oldHash });
      const changedAt = async () =>
        (await s.durable.db.selectFrom('users').select('password_changed_at').where('id', '=', user.id).executeTakeFirstOrThrow()).password_changed_at;
      const createdAt = await changedAt();
      expect(createdAt).not.toBeNull();
      // The user's new password lands first; the rehash of the old one, made from the hash read before, then changes nothing.
      const save = s.users.rehashPassword.bind(s.users);
      let rehashed: Promise<void> | undefined;
      s.users.rehashPassword = (...args: Parameters<typeof save>) => {
        rehashed = (async () => {
          await s.users.setPasswordHash(tenant.id, user.id, 'the new password hash');
          await save(...args);
        })();
        return rehashed;
      };
      try {
        expect((await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx())).kind).toBe('done');
        for (let i = 0; i < 200 && !rehashed; i++) await new Promise((r) => setTimeout(r, 10));
        await rehashed;
      } finally {
        s.users.rehashPassword = save;
      }
      expect((await s.users.findByUsername(tenant.id, user.username))?.passwordHash).toBe('the new password hash');
      // A rehash alone keeps the password's date.
      const other = await createUser(s, tenant, { passwordHash: oldHash });
      const before = (await s.durable.db.selectFrom('users').select('password_changed_at').where('id', '=', other.id).executeTakeFirstOrThrow())
        .password_changed_at;
      await s.users.rehashPassword(tenant.id, other.id, oldHash, 'rehashed');
      const after = await s.durable.db
        .selectFrom('users')
        .select(['password_hash', 'password_changed_at'])
        .where('id', '=', other.id)
        .executeTakeFirstOrThrow();
      expect(after).toEqual({ password_hash: 'rehashed', password_changed_at: before });
    });

    it('tells a failed rehash to the background-error listener, and still lets the user in', async () => {
      const old = new PasswordHasher({ params: { memoryCost: 2048, timeCost: 1, parallelism: 1 } });
      const user = await createUser(s, tenant, { passwordHash: await old.hash(PASSWORD) });
      const deps = (s.signin as unknown as { deps: { onBackgroundError?: (err: unknown, what: string) => void } }).deps;
      const before = deps.onBackgroundError;
      const save = s.users.rehashPassword.bind(s.users);
      const told: [unknown, string][] = [];
      const failure = new Error('the database went away');
      deps.onBackgroundError = (err, what) => told.push([err, what]);
      s.users.rehashPassword = async () => {
        throw failure;
      };
      try {
        expect((await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx())).kind).toBe('done');
        for (let i = 0; i < 200 && told.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        expect(told).toEqual([[failure, 'password rehash']]);
      } finally {
        deps.onBackgroundError = before;
        s.users.rehashPassword = save;
      }
    });

    it("spends the familiar part of the budget from a source where the password was proved lately, not the strangers' part", async () => {
      const user = await newUser();
      const strict = withPolicy(tenant, { mfaRequired: false, lockout: { accountFailures: 10, blockMinutes: 5 } });
      const home = ctx();
      expect((await s.signin.passwordStep(strict, user.username, PASSWORD, home)).kind).toBe('done');
      for (let i = 0; i < 12; i++) await rejection(s.signin.passwordStep(strict, user.username, 'wrong', ctx()));
      expect(await rejection(s.signin.passwordStep(strict, user.username, PASSWORD, ctx()))).toMatchObject({ code: 'too-many-requests' });
      expect((await s.signin.passwordStep(strict, user.username, PASSWORD, home)).kind).toBe('done');
    });
  });

  describe('the second factor', () => {
    it('takes no remembered-browser token as a known browser for the second factor: the token stands in for that factor, so it buys no guesses at it', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      const strict = withPolicy(tenant, { rememberedDeviceDays: 30, lockout: { accountFailures: 10, blockMinutes: 5 } });
      const remembered = await new RememberedDevices(s.durable.db, clock).remember(
        strict,
        user.id,
        'prompts-test',
        await liveSessionToken(s, tenant.id, user.id),
      );
      for (let i = 0; i < 4; i++) {
        const flow = await factorFlow(user, strict);
        for (let j = 0; j < 3; j++) await rejection(s.signin.verify(strict, flow, 'totp', { code: '000000' }, ctx()));
      }
      const browser = ctx({ rememberedDevice: remembered!.token, requireMfa: true });
      const flow = await factorFlow(user, strict, browser);
      expect(await rejection(s.signin.verify(strict, flow, 'totp', { code: '000000' }, browser))).toMatchObject({ code: 'too-many-requests' });
    });

    it("opens an app's transaction without the password among its factors, for that app", async () => {
      const user = await newUser();
      const tx = await s.signin.startAppTransaction(tenant, 'app-9', user);
      expect(await s.ephemeral.get(flowKey({ id: tx, appId: 'app-9' }))).toMatchObject({ kind: 'app-transaction', appId: 'app-9', userId: user.id, amr: [] });
      const flow = await factorFlow((await addCredential(user, 'totp', 'Phone app'), user));
      const record = await s.ephemeral.get(flowKey({ id: flow }));
      expect(record).toMatchObject({ kind: 'second-factor', amr: ['pwd'] });
      expect(record).not.toHaveProperty('appId');
    });
  });

  describe('a pass in place of the password', () => {
    it('sends a user who must register to register, though the tenant requires no second factor', async () => {
      const user = await newUser({ withPassword: false });
      expect(await s.users.update(tenant.id, user.id, { mustRegister: true })).toBe(true);
      const { code } = await s.passes.issue(tenant, user.id, { oneTime: false }, 'admin');
      const step = await s.signin.tapStep(withPolicy(tenant, { mfaRequired: false }), user.username, code, ctx());
      expect(step).toMatchObject({ kind: 'register', methods: [expect.objectContaining({ type: 'tap' })] });
      expect(await s.sessions.authenticate(step.session.token)).toMatchObject({ scope: 'register', amr: ['tap'] });
    });

    it('records a pass that lets a user with a method in as a password-step success by pass', async () => {
      const user = await newUser();
      await addCredential(user, 'totp', 'Phone app');
      const { code } = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      expect((await s.signin.tapStep(tenant, user.username, code, ctx())).kind).toBe('done');
      const [event] = (await s.events.listForUser(tenant.id, user.id, 5)).items;
      expect(event).toMatchObject({ step: 'password', outcome: 'success', reason: 'ok', method: 'tap' });
    });

    it('refuses a pass for nobody as for a wrong one', async () => {
      expect(await rejection(s.signin.tapStep(tenant, 'nobody-at-all', 'AAAA-AAAA-AAAA-AAAA', ctx()))).toMatchObject({ code: 'invalid-credentials' });
    });
  });
});
