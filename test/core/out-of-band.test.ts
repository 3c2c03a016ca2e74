import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { KeyedHasher } from '../../src/crypto/keyed-hash.ts';
import type { Channel, OutboundMessage } from '../../src/delivery/channel.ts';
import type { DeliveryPort } from '../../src/delivery/delivery.ts';
import { renderCodeMessage } from '../../src/delivery/messages.ts';
import { ChannelDown } from '../../src/delivery/provider-chain.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { secretContext, type Credential, type Credentials } from '../../src/methods/credentials.ts';
import type { FlowContext } from '../../src/methods/method.ts';
import { OneTimeCodes } from '../../src/methods/out-of-band/one-time-codes.ts';
import { createOutOfBandMethod, type OutOfBandMethod } from '../../src/methods/out-of-band/out-of-band-method.ts';
import { SendLimits, type SendTarget } from '../../src/methods/out-of-band/send-limits.ts';
import { METHOD_MODULES, methodName, methodStrength } from '../../src/methods/registry.ts';
import type { Services } from '../../src/server/services.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { createUser, rejection, startCoreServices, type CoreServices } from './core-services.ts';

/**
 * Codes by text, call and email (methods/out-of-band/out-of-band-method.ts) at
 * the level of the method's own promises, on SQLite with a delivery that
 * records what it was given: the set-up and its confirmation, the challenge and
 * the answer, each code once and in its own scope, the resend cooldown, the send
 * limits and what a failed send leaves behind. Fast enough for `npm run mutate`.
 */
const MINUTE = 60_000;
const COOLDOWN_MS = 30_500;
const HOST = 'mfa.example.test';

/** A delivery port that records the messages it is given; channels are configured, available and failing at will. */
class RecordingDelivery implements DeliveryPort {
  readonly sent: OutboundMessage[] = [];
  readonly tried: OutboundMessage[] = [];
  configuredChannels = new Set<Channel>(['sms', 'voice', 'email']);
  availableChannels = new Set<Channel>(['sms', 'voice', 'email']);
  failWith: Error | undefined;
  configured(channel: Channel) {
    return this.configuredChannels.has(channel);
  }
  available(channel: Channel) {
    return this.availableChannels.has(channel);
  }
  async send(message: OutboundMessage) {
    this.tried.push(message);
    if (this.failWith) throw this.failWith;
    this.sent.push(message);
    return 'sent';
  }
  health() {
    return {};
  }
  /** The code in the last message sent (the SMS's origin-bound line, the email's text, the call's digits). */
  lastCode(): string {
    const m = this.sent.at(-1)!;
    if (m.channel === 'sms') return /#([0-9]+)$/.exec(m.text)![1]!;
    if (m.channel === 'email') return /code is ([0-9]+)\./.exec(m.text)![1]!;
    return /code is ([0-9, ]+)\. Again/.exec(m.text)![1]!.replace(/, /g, '');
  }
}

describe('codes by text, call and email on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const settings = { digits: 6, lifetimeMs: 80_000, maxAttempts: 3 };
  const limitSettings = { perDestinationPerHour: 50, perUserPerHour: 50, perTenantPerHour: 500, perSessionPerHour: 50, perSourcePerHour: 50 };

  interface Rig {
    delivery: RecordingDelivery;
    /** Every credential the methods inserted, in order (a failed set-up's too, though it is deleted). */
    inserted: Credential[];
    consumed: SendTarget[];
    method: (channel: Channel) => OutOfBandMethod;
    allowedCountries?: string[] | undefined;
    limits: SendLimits;
    destinationHasher: KeyedHasher;
    codes: OneTimeCodes;
  }
  /** A fresh delivery, code store and send limits; methods made from them share them. */
  const rig = (over: { allowedCountries?: string[]; limits?: Partial<typeof limitSettings> } = {}): Rig => {
    const store = new MemoryEphemeralStore(clock);
    const delivery = new RecordingDelivery();
    const consumed: SendTarget[] = [];
    const limits = new SendLimits(store, { ...limitSettings, ...over.limits });
    const recording = {
      consume: (target: SendTarget) => {
        consumed.push(target);
        return limits.consume(target);
      },
    } as unknown as SendLimits;
    const destinationHasher = new KeyedHasher(s.keyRing.deriveKey('destinations'));
    const inserted: Credential[] = [];
    const credentials = Object.create(s.credentials) as Credentials;
    credentials.insert = async (input) => {
      const made = await s.credentials.insert(input);
      inserted.push(made);
      return made;
    };
    stores.push(store);
    const codes = new OneTimeCodes(store, new KeyedHasher(s.keyRing.deriveKey('one-time-codes')), clock, settings);
    const r: Rig = {
      delivery,
      inserted,
      consumed,
      limits,
      destinationHasher,
      codes,
      allowedCountries: over.allowedCountries,
      method: (channel) =>
        createOutOfBandMethod(channel, {
          credentials,
          keyRing: s.keyRing,
          clock,
          ephemeral: store,
          delivery,
          codes,
          sendLimits: recording,
          destinationHasher,
          publicHost: HOST,
          resendCooldownMs: COOLDOWN_MS,
          allowedCountries: r.allowedCountries,
        }),
    };
    return r;
  };
  const stores: MemoryEphemeralStore[] = [];
  const newUser = (): Promise<User> => createUser(s, tenant);
  const pendingOf = async (user: User) => s.credentials.listForUser(tenant.id, user.id, 'pending');
  let flows = 0;
  const flow = (over: Partial<FlowContext> = {}): FlowContext => ({ flowId: `flow-${++flows}`, tenant, ip: '198.51.100.7', ...over });
  /** An active credential of the channel, as a confirmed set-up leaves it. */
  const active = async (r: Rig, user: User, channel: Channel, to: string, isDefault = false): Promise<Credential> => {
    const { credential } = await r.method(channel).enrol(tenant, user, { to });
    await r.method(channel).confirm!(credential, r.delivery.lastCode(), 'any');
    if (isDefault) await s.credentials.update(credential, { isDefault: true });
    return (await s.credentials.get(tenant.id, user.id, credential.id))!;
  };

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('oob', 'Acme & Co');
    otherTenant = await s.tenants.create('oob-other');
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await core?.stop();
  });

  it('is one method per channel, says what the delivery says about its channel, and its set-up proves nothing by itself', () => {
    const r = rig();
    for (const channel of ['sms', 'voice', 'email'] as const) {
      const method = r.method(channel);
      expect([method.type, method.channel, method.enrolmentProvesPossession]).toEqual([channel, channel, false]);
      expect([method.available!(), method.configured()]).toEqual([true, true]);
      r.delivery.availableChannels.delete(channel);
      expect([method.available!(), method.configured()]).toEqual([false, true]);
      r.delivery.configuredChannels.delete(channel);
      expect([method.available!(), method.configured()]).toEqual([false, false]);
      // Only its own channel counts.
      if (channel !== 'email') expect(r.method('email').available!()).toBe(true);
    }
  });

  it('sets up a pending phone: the number sealed to this credential, shown masked, and a code sent to it', async () => {
    const r = rig();
    const user = await newUser();
    const { credential, reveal } = await r.method('sms').enrol(tenant, user, { to: ' +44 7700 900-123 ', label: '  Work phone  ' });
    expect(credential).toMatchObject({
      tenantId: tenant.id,
      userId: user.id,
      type: 'sms',
      label: 'Work phone',
      state: 'pending',
      publicData: { to: '+••••••••••23' },
    });
    expect(s.keyRing.open(credential.secret!, secretContext('sms', credential.id)).toString('utf8')).toBe('+447700900123');
    expect(() => s.keyRing.open(credential.secret!, secretContext('voice', credential.id))).toThrow();
    expect(await pendingOf(user)).toEqual([expect.objectContaining({ id: credential.id })]);
    const code = r.delivery.lastCode();
    expect(code).toMatch(/^[0-9]{6}$/);
    // The message as the channel renders it: to the number itself, naming the tenant, the host and the lifetime (80 s: 1 minute).
    expect(r.delivery.sent).toEqual([
      renderCodeMessage({ channel: 'sms', to: '+447700900123', code, tenantName: 'Acme & Co', host: HOST, lifetimeMinutes: 1 }),
    ]);
    expect(reveal).toEqual({
      to: '+••••••••••23',
      delivery: {
        channel: 'sms',
        to: '+••••••••••23',
        expiresAt: new Date(clock.now() + settings.lifetimeMs).toISOString(),
        resendAfterSeconds: 31,
      },
    });
    // Counted against the user, the destination (by a keyed hash, never the number) and the session that asked.
    const requester = { origin: 'session:s1', ip: '203.0.113.5' };
    await r.method('sms').enrol(tenant, user, { to: '+447700900124', requester });
    expect(r.consumed).toEqual([
      { tenantId: tenant.id, userId: user.id, destinationKey: r.destinationHasher.hash('sms:+447700900123'), requester: undefined },
      { tenantId: tenant.id, userId: user.id, destinationKey: r.destinationHasher.hash('sms:+447700900124'), requester },
    ]);
    expect(await r.method('sms').reveal!(tenant, user, credential)).toEqual({ to: '+••••••••••23' });
  });

  it('names a set-up by its masked destination when no label is given, and says its lifetime rounded to the minute', async () => {
    const r = rig();
    const user = await newUser();
    settings.lifetimeMs = 110_000;
    try {
      const blank = await r.method('email').enrol(tenant, user, { to: 'Dora.Smith@Example.CO.UK', label: '   ' });
      expect(blank.credential.label).toBe('D•••@e•••.uk');
      expect(r.delivery.sent.at(-1)).toMatchObject({ channel: 'email', to: 'Dora.Smith@example.co.uk', subject: 'Your Acme & Co verification code' });
      expect(r.delivery.sent.at(-1)!.text).toContain('It expires in 2 minutes.');
      const none = await r.method('voice').enrol(tenant, user, { to: '+14155550100' });
      expect(none.credential.label).toBe('+•••••••••00');
      expect(r.delivery.sent.at(-1)!.text).toMatch(/^This is Acme & Co\. Your verification code is [0-9](, [0-9]){5}\./);
    } finally {
      settings.lifetimeMs = 80_000;
    }
  });

  it('counts an address by whom it reaches: the case of its local part and a +tag make no new destination', async () => {
    const r = rig();
    const user = await newUser();
    await r.method('email').enrol(tenant, user, { to: 'dora@example.test' });
    await r.method('email').enrol(tenant, user, { to: 'Dora+shop@EXAMPLE.test' });
    const key = r.destinationHasher.hash('email:dora@example.test');
    expect(r.consumed.map((c) => c.destinationKey)).toEqual([key, key]);
    // A phone number of the same digits on another channel is another destination.
    await r.method('sms').enrol(tenant, user, { to: '+14155550100' });
    await r.method('voice').enrol(tenant, user, { to: '+14155550100' });
    expect(r.consumed[2]!.destinationKey).not.toBe(r.consumed[3]!.destinationKey);
  });

  it('refuses a set-up with no provider, an unusable destination, a country not allowed, or a channel that is down, leaving nothing', async () => {
    const r = rig({ allowedCountries: ['GB'] });
    const user = await newUser();
    r.delivery.configuredChannels.delete('voice');
    r.delivery.availableChannels.delete('voice');
    expect(await rejection(r.method('voice').enrol(tenant, user, { to: '+447700900123' }))).toMatchObject({
      code: 'method-unavailable',
      detail: 'This server has no provider for phone calls',
    });
    expect(await rejection(r.method('sms').enrol(tenant, user, { to: '07700 900123' }))).toMatchObject({
      code: 'invalid-request',
      detail: 'enter a phone number with its country code, such as +44 7700 900123',
    });
    expect(await rejection(r.method('sms').enrol(tenant, user, {}))).toMatchObject({ code: 'invalid-request' });
    expect(await rejection(r.method('email').enrol(tenant, user, { to: 'not an address' }))).toMatchObject({
      code: 'invalid-request',
      detail: 'enter an email address, such as name@example.com',
    });
    expect(await rejection(r.method('sms').enrol(tenant, user, { to: '+14155550100' }))).toMatchObject({ code: 'destination-not-allowed' });
    // The country list is for phones: an address is not a phone number of any country.
    await r.method('email').enrol(tenant, user, { to: 'ok@example.test' });
    await r.method('sms').enrol(tenant, user, { to: '+447400123456' });
    expect(r.delivery.sent.map((m) => m.to)).toEqual(['ok@example.test', '+447400123456']);
    // Configured, but no provider can take a message now: refused before anything is stored or sent.
    r.delivery.availableChannels.delete('sms');
    expect(await rejection(r.method('sms').enrol(tenant, user, { to: '+447400123457' }))).toMatchObject({
      code: 'method-unavailable',
      detail: 'Codes by text messages cannot be sent right now',
    });
    expect(r.delivery.tried).toHaveLength(2);
    expect(r.consumed).toHaveLength(2);
    // Not even stored for a moment (a stored set-up can push the user's oldest unfinished one out).
    expect(r.inserted).toHaveLength(2);
    expect((await pendingOf(user)).map((c) => c.type).sort()).toEqual(['email', 'sms']);
  });

  it('removes the set-up, the code, the cooldown and the sends it counted when the message could not go out', async () => {
    for (const failure of [new ChannelDown('email', ['smtp: refused']), new Error('the provider answered nonsense')]) {
      const r = rig({ limits: { perUserPerHour: 1 } });
      const user = await newUser();
      r.delivery.failWith = failure;
      const refused = await rejection(r.method('email').enrol(tenant, user, { to: 'eve@example.test' }));
      if (failure instanceof ChannelDown) expect(refused).toMatchObject({ code: 'method-unavailable', detail: 'Codes by email cannot be sent right now' });
      else expect(refused).toEqual({ code: 'not-an-app-error', err: failure });
      expect(await pendingOf(user)).toEqual([]);
      const lost = r.inserted[0]!;
      expect(await s.credentials.get(tenant.id, user.id, lost.id)).toBeUndefined();
      // The code made for the message is gone too: the message's own code is no longer good for its scope.
      const code = /code is ([0-9]+)\./.exec(r.delivery.tried[0]!.text)![1]!;
      expect(await r.codes.check(`enrol:${lost.id}`, code)).toBe(false);
      r.delivery.failWith = undefined;
      // The user's one send an hour was given back.
      const { credential } = await r.method('email').enrol(tenant, user, { to: 'eve@example.test' });
      expect(r.delivery.sent).toHaveLength(1);
      expect(await r.method('email').confirm!(credential, r.delivery.lastCode(), 'any')).toBe(true);
    }
  });

  it('revokes the code of a send that failed, so nothing it carried can be used', async () => {
    const r = rig();
    const user = await newUser();
    const phone = await active(r, user, 'sms', '+447700900200');
    const f = flow();
    r.delivery.failWith = new ChannelDown('sms', ['twilio: 503']);
    expect(await rejection(r.method('sms').challenge!([phone], f))).toMatchObject({ code: 'method-unavailable' });
    const lost = /#([0-9]+)$/.exec(r.delivery.tried.at(-1)!.text)![1]!;
    r.delivery.failWith = undefined;
    expect(await r.method('sms').verify([phone], { code: lost }, f)).toBeUndefined();
    expect(await r.codes.check(`flow:${f.flowId}:${phone.id}`, lost)).toBe(false);
    // Nothing went out, so the same flow may ask again at once.
    await r.method('sms').challenge!([phone], f);
    expect((await r.method('sms').verify([phone], { code: r.delivery.lastCode() }, f))?.credential.id).toBe(phone.id);
  });

  it('gives a send refused by the limits no cooldown and sends nothing', async () => {
    const r = rig({ limits: { perDestinationPerHour: 1 } });
    const user = await newUser();
    await r.method('sms').enrol(tenant, user, { to: '+447700900300' });
    const again = await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'sms', label: 'x', state: 'pending' });
    const sealed = { ...again, secret: s.keyRing.seal('+447700900300', secretContext('sms', again.id)) };
    for (let i = 0; i < 2; i++) expect(await rejection(r.method('sms').resendConfirmation(tenant, sealed))).toMatchObject({ code: 'send-limit' });
    expect(r.delivery.tried).toHaveLength(1);
  });

  it('resends a confirmation code only to a pending set-up, and only after the cooldown, saying how long to wait', async () => {
    const r = rig();
    const user = await newUser();
    const { credential } = await r.method('sms').enrol(tenant, user, { to: '+447700900400' });
    const first = r.delivery.lastCode();
    clock.advance(10_000);
    expect(await rejection(r.method('sms').resendConfirmation(tenant, credential))).toMatchObject({ code: 'code-recently-sent', retryAfter: 21 });
    clock.advance(COOLDOWN_MS - 10_000 - 1);
    expect(await rejection(r.method('sms').resendConfirmation(tenant, credential))).toMatchObject({ code: 'code-recently-sent', retryAfter: 1 });
    clock.advance(1);
    const requester = { origin: 'session:resend', ip: '203.0.113.8' };
    const { delivery } = await r.method('sms').resendConfirmation(tenant, credential, requester);
    expect(delivery).toMatchObject({ channel: 'sms', to: '+••••••••••00', resendAfterSeconds: 31 });
    expect(r.consumed.at(-1)!.requester).toEqual(requester);
    const second = r.delivery.lastCode();
    // The new code replaces the old one.
    if (first !== second) expect(await r.method('sms').confirm!(credential, first, 'any')).toBe(false);
    expect(await r.method('sms').confirm!(credential, second, 'any')).toBe(true);
    const now = (await s.credentials.get(tenant.id, user.id, credential.id))!;
    expect(now.state).toBe('active');
    expect(await rejection(r.method('sms').resendConfirmation(tenant, now))).toMatchObject({ code: 'invalid-state', detail: 'this method is already active' });
  });

  it('confirms a set-up with its own code once, within the hour a pending set-up lives', async () => {
    const r = rig();
    const user = await newUser();
    const { credential } = await r.method('voice').enrol(tenant, user, { to: '+447700900500' });
    const code = r.delivery.lastCode();
    const { credential: other } = await r.method('voice').enrol(tenant, user, { to: '+447700900501' });
    const otherCode = r.delivery.lastCode();
    if (otherCode !== code) expect(await r.method('voice').confirm!(credential, otherCode, 'any')).toBe(false);
    // The code sent at set-up is no answer to a sign-in, nor the other way round.
    expect(await r.method('voice').verify([credential], { code }, flow())).toBeUndefined();
    expect(await r.method('voice').confirm!(credential, code, 'any')).toBe(true);
    expect(await r.method('voice').confirm!(credential, code, 'any')).toBe(false);
    // Exactly an hour after it was made it can still be confirmed; a moment later not even with its own code.
    clock.advance(60 * MINUTE - COOLDOWN_MS);
    await r.method('voice').resendConfirmation(tenant, other);
    clock.advance(COOLDOWN_MS);
    expect(await r.method('voice').confirm!(other, r.delivery.lastCode(), 'any')).toBe(true);
    const { credential: late } = await r.method('voice').enrol(tenant, user, { to: '+447700900502' });
    clock.advance(60 * MINUTE - COOLDOWN_MS);
    await r.method('voice').resendConfirmation(tenant, late);
    clock.advance(COOLDOWN_MS + 1);
    expect(await r.method('voice').confirm!(late, r.delivery.lastCode(), 'any')).toBe(false);
    expect((await s.credentials.get(tenant.id, user.id, late.id))!.state).toBe('pending');
  });

  it('sends a sign-in code to the default of several, else the first, counted against the flow and its address', async () => {
    const r = rig();
    const user = await newUser();
    const made = [
      await active(r, user, 'sms', '+447700900600'),
      await active(r, user, 'sms', '+447700900601', true),
      await active(r, user, 'sms', '+447700900602'),
    ];
    // As the sign-in reads them: the second is the default (the first was, until the second was made so).
    const [a, b, c] = (await Promise.all(made.map((m) => s.credentials.get(tenant.id, user.id, m.id)))) as [Credential, Credential, Credential];
    expect([a.isDefault, b.isDefault, c.isDefault]).toEqual([false, true, false]);
    r.consumed.length = 0;
    const f = flow();
    const { delivery } = await r.method('sms').challenge!([a, b, c], f);
    expect(r.delivery.sent.at(-1)!.to).toBe('+447700900601');
    expect(delivery).toEqual({
      channel: 'sms',
      to: '+••••••••••01',
      expiresAt: new Date(clock.now() + settings.lifetimeMs).toISOString(),
      resendAfterSeconds: 31,
    });
    expect(r.consumed).toEqual([
      {
        tenantId: tenant.id,
        userId: user.id,
        // A confirmed number's own cap, its owner's: strangers enrolling the number spend another.
        destinationKey: `owned|${tenant.id}|${user.id}|${r.destinationHasher.hash('sms:+447700900601')}`,
        requester: { origin: `flow:${f.flowId}`, ip: '198.51.100.7' },
      },
    ]);
    await r.method('sms').challenge!([a, c], flow({ ip: undefined }));
    expect(r.delivery.sent.at(-1)!.to).toBe('+447700900600');
    expect(r.consumed.at(-1)!.requester).toBeUndefined();
  });

  it('keeps a cooldown per flow and credential: the same flow waits, another flow or another credential does not', async () => {
    const r = rig();
    const user = await newUser();
    const a = await active(r, user, 'email', 'ann@example.test');
    const b = await active(r, user, 'email', 'ann2@example.test');
    const f = flow();
    await r.method('email').challenge!([a], f);
    expect(await rejection(r.method('email').challenge!([a], f))).toMatchObject({ code: 'code-recently-sent', retryAfter: 31 });
    await r.method('email').challenge!([b], f);
    await r.method('email').challenge!([a], flow());
    // A channel that is down is refused before the cooldown starts: once it is back, the code goes at once.
    const g = flow();
    r.delivery.availableChannels.delete('email');
    const before = r.delivery.tried.length;
    expect(await rejection(r.method('email').challenge!([a], g))).toMatchObject({
      code: 'method-unavailable',
      detail: 'Codes by email cannot be sent right now',
    });
    expect(r.delivery.tried).toHaveLength(before);
    r.delivery.availableChannels.add('email');
    await r.method('email').challenge!([a], g);
  });

  it('takes the code of this flow and credential once, names the credential it proved, and marks it used', async () => {
    for (const [channel, to, amr] of [
      ['sms', '+447700900700', ['sms']],
      ['voice', '+447700900701', ['tel']],
      ['email', 'val@example.test', ['otp']],
    ] as const) {
      const r = rig();
      const user = await newUser();
      const first = await active(r, user, channel, to);
      const second = await active(r, user, channel, channel === 'email' ? 'val2@example.test' : '+447700900799');
      const f = flow();
      await r.method(channel).challenge!([second], f);
      const code = r.delivery.lastCode();
      // Another flow, or no code at all, proves nothing.
      expect(await r.method(channel).verify([first, second], { code }, flow())).toBeUndefined();
      expect(await r.method(channel).verify([first, second], {}, f)).toBeUndefined();
      clock.advance(5000);
      const verified = await r.method(channel).verify([first, second], { code }, f);
      expect(verified).toEqual({ credential: second, amr });
      expect((await s.credentials.get(tenant.id, user.id, second.id))!.lastUsedAt).toBe(clock.now());
      expect((await s.credentials.get(tenant.id, user.id, first.id))!.lastUsedAt).toBeNull();
      // Once.
      expect(await r.method(channel).verify([first, second], { code }, f)).toBeUndefined();
    }
  });

  it("seals each destination to its own credential: another credential's sealed number does not open under this one", async () => {
    const r = rig();
    const user = await newUser();
    const mine = await active(r, user, 'sms', '+447700900800');
    const stranger = await createUser(s, otherTenant);
    const theirs = await s.credentials.insert({ tenantId: otherTenant.id, userId: stranger.id, type: 'sms', label: 'x', state: 'pending' });
    // A secret copied from one credential onto another cannot be opened (the credential id is in the seal's context).
    await expect(r.method('sms').challenge!([{ ...theirs, secret: mine.secret }], flow({ tenant: otherTenant }))).rejects.toThrow();
    expect(r.delivery.tried.filter((m) => m.to === '+447700900800')).toHaveLength(1);
  });

  it('is what the registry builds: every type with an implementation, the out-of-band ones as such', () => {
    const built = METHOD_MODULES.filter((m) => 'create' in m).map((m) => m.descriptor.type);
    expect(s.methods.types).toEqual(built);
    expect(built).not.toContain('tap');
    for (const type of ['sms', 'voice', 'email']) expect(s.methods.outOfBand(type)).toBe(s.methods.get(type));
    for (const type of ['totp', 'webauthn', 'push', 'recovery-codes', 'tap', 'fax']) expect(s.methods.outOfBand(type)).toBeUndefined();
    expect(s.methods.webauthn).toBe(s.methods.get('webauthn'));
    expect(s.methods.push).toBe(s.methods.get('push'));
    expect(s.methods.webauthn.type).toBe('webauthn');
    expect(methodName('carrier-pigeon')).toBe('carrier-pigeon');
    expect(methodStrength('carrier-pigeon')).toBe(0);
    expect(methodStrength('webauthn')).toBeGreaterThan(methodStrength('sms'));
  });
});
