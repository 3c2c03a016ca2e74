import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import type { Credential, Credentials } from '../../src/methods/credentials.ts';
import type { FlowContext } from '../../src/methods/method.ts';
import { SingleUseHolds } from '../../src/methods/single-use-holds.ts';
import { createWebAuthnMethod, relyingPartyFrom, type WebAuthnMethod } from '../../src/methods/webauthn/webauthn-method.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';
import { createUser, rejection, startCoreServices, withPolicy, type CoreServices } from './core-services.ts';

/**
 * The WebAuthn method at the level of its own promises (no HTTP, SQLite, the
 * soft authenticator): the registration ceremony (its options, once, the
 * kinds, the allowed models, a key registered twice), and the sign-in
 * ceremony (its options, a challenge answered once, the owner named by the
 * user handle, the signature counter and a cloned key, what an assertion
 * proves). test/core/passkey-signin.test.ts drives it through SigninService;
 * test/integration/webauthn-api.test.ts over HTTP.
 */
const ORIGIN = 'https://login.example.com';
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;

/** A soft authenticator whose every answer carries extra flags (backup eligible and backed up: a synced passkey). */
const synced = (auth: SoftAuthenticator) => {
  const head = (auth as unknown as { authDataHead: (flags: number) => Buffer }).authDataHead.bind(auth);
  (auth as unknown as { authDataHead: (flags: number) => Buffer }).authDataHead = (flags: number) => head(flags | FLAG_BE | FLAG_BS);
  return auth;
};

describe('the WebAuthn method on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 11));
  let flowN = 0;
  const webauthn = () => s.methods.get('webauthn') as WebAuthnMethod;

  const register = async (user: User, kind: 'passkey' | 'security-key', opts: { t?: Tenant; auth?: SoftAuthenticator; label?: string } = {}) => {
    const t = opts.t ?? tenant;
    const authenticator = opts.auth ?? new SoftAuthenticator(ORIGIN, Buffer.alloc(16), kind === 'passkey');
    const options = await webauthn().registrationOptions(t, user, kind);
    const { credential, reveal } = await webauthn().enrol(t, user, { attestation: authenticator.register(options), label: opts.label });
    expect(reveal).toEqual({});
    return { authenticator, credential, options };
  };
  const flow = (over: Partial<FlowContext> = {}): FlowContext => ({ flowId: `wa-flow-${++flowN}`, tenant, ...over });
  const reload = async (c: Credential) => (await s.credentials.get(c.tenantId, c.userId, c.id))!;
  /** A challenge for the flow over the candidates; its options. */
  const challenge = async (candidates: Credential[], f: FlowContext, method = webauthn()) =>
    (await method.challenge(candidates, f)).webauthn as {
      challenge: string;
      allowCredentials: { id: string; transports?: string[] }[];
      userVerification: string;
      rpId: string;
    };

  beforeAll(async () => {
    core = await startCoreServices(clock, { STEADFAST_PUBLIC_URL: ORIGIN });
    s = core.services;
    tenant = await s.tenants.create('wa', 'WebAuthn Co');
    otherTenant = await s.tenants.create('wa-other');
  });
  afterAll(async () => {
    await core?.stop();
  });

  it('takes the relying party from the public URL', () => {
    expect(relyingPartyFrom('https://login.example.com:8443/some/path')).toEqual({ id: 'login.example.com', origins: ['https://login.example.com:8443'] });
    expect(webauthn().type).toBe('webauthn');
    expect(webauthn().enrolmentProvesPossession).toBe(true);
  });

  it('offers registration options naming the tenant and the user, excluding the keys the user has', async () => {
    const user = await createUser(s, tenant);
    const first = await webauthn().registrationOptions(tenant, user, 'passkey');
    expect(first).toMatchObject({
      rp: { name: 'WebAuthn Co', id: 'login.example.com' },
      user: { name: user.username, id: Buffer.from(user.id).toString('base64url') },
      attestation: 'none',
      excludeCredentials: [],
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
    });
    const security = await webauthn().registrationOptions(tenant, user, 'security-key');
    expect(security.authenticatorSelection).toEqual({
      residentKey: 'discouraged',
      requireResidentKey: false,
      userVerification: 'preferred',
      authenticatorAttachment: 'cross-platform',
    });
    const { authenticator } = await register(user, 'passkey');
    // Another method's credential with an external id (a paired device), a WebAuthn row without one, and another user's key are not excluded.
    await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'push', label: 'phone', state: 'active', externalId: 'device-1', publicData: {} });
    await s.credentials.insert({
      tenantId: tenant.id,
      userId: user.id,
      type: 'webauthn',
      label: 'odd',
      state: 'active',
      externalId: null,
      publicData: { transports: ['nfc'] },
    });
    // A WebAuthn row not active.
    await s.credentials.insert({
      tenantId: tenant.id,
      userId: user.id,
      type: 'webauthn',
      label: 'left',
      state: 'pending',
      externalId: 'pending-key',
      publicData: { transports: ['ble'] },
    });
    await register(await createUser(s, tenant), 'passkey');
    const later = await webauthn().registrationOptions(tenant, user, 'security-key');
    expect(later.excludeCredentials).toEqual([{ id: authenticator.id, type: 'public-key', transports: ['usb'] }]);
  });

  it('registers a passkey and a security key, keeping public data only', async () => {
    const user = await createUser(s, tenant);
    const passkey = await register(user, 'passkey');
    expect(passkey.credential).toMatchObject({
      tenantId: tenant.id,
      userId: user.id,
      type: 'webauthn',
      state: 'active',
      label: 'Passkey',
      externalId: passkey.authenticator.id,
      secret: null,
    });
    expect(passkey.credential.publicData).toEqual({
      kind: 'passkey',
      publicKey: passkey.authenticator.coseKey().toString('base64url'),
      counter: 0,
      transports: ['usb'],
      aaguid: '00000000-0000-0000-0000-000000000000',
      backupEligible: false,
      backedUp: false,
    });
    const key = await register(user, 'security-key', { label: '  Blue key ' });
    expect(key.credential).toMatchObject({ label: 'Blue key' });
    expect(key.credential.publicData).toMatchObject({ kind: 'security-key' });
    expect((await register(user, 'security-key', { label: '   ' })).credential.label).toBe('Security key');
    // A synced passkey.
    const syncedKey = await register(user, 'passkey', { auth: synced(new SoftAuthenticator(ORIGIN)) });
    expect(syncedKey.credential.publicData).toMatchObject({ backupEligible: true, backedUp: true });
  });

  it('keeps no transports when the browser names none, and registers as a first method only while the user has no other', async () => {
    const user = await createUser(s, tenant);
    const auth = new SoftAuthenticator(ORIGIN);
    const attestation = auth.register(await webauthn().registrationOptions(tenant, user, 'passkey')) as { response: Record<string, unknown> };
    const { credential } = await webauthn().enrol(tenant, user, {
      attestation: { ...attestation, response: { ...attestation.response, transports: undefined } },
    });
    expect(credential.publicData.transports).toEqual([]);
    const options = await webauthn().registrationOptions(tenant, user, 'passkey');
    expect(
      await rejection(webauthn().enrol(tenant, user, { attestation: new SoftAuthenticator(ORIGIN).register(options), activation: 'first-method' })),
    ).toMatchObject({
      code: 'already-registered',
    });
  });

  it('registers once per ceremony, within five minutes, for the user who started it', async () => {
    const user = await createUser(s, tenant);
    const expired = { code: 'invalid-state', detail: 'the registration has expired; start adding the key again', extra: {}, retryAfter: undefined };
    // No ceremony.
    expect(
      await rejection(webauthn().enrol(tenant, user, { attestation: new SoftAuthenticator(ORIGIN).register({ challenge: 'x', user: { id: 'u' } }) })),
    ).toEqual(expired);
    // A ceremony answered once, right or wrong.
    const auth = new SoftAuthenticator(ORIGIN);
    const options = await webauthn().registrationOptions(tenant, user, 'passkey');
    const attestation = auth.register(options);
    expect(await rejection(webauthn().enrol(tenant, user, { attestation: { ...attestation, response: {} } }))).toEqual({
      code: 'invalid-request',
      detail: 'the authenticator response could not be verified',
      extra: {},
      retryAfter: undefined,
    });
    expect(await rejection(webauthn().enrol(tenant, user, { attestation }))).toEqual(expired);
    // Another user's ceremony is not this user's.
    const other = await createUser(s, tenant);
    await webauthn().registrationOptions(tenant, other, 'passkey');
    expect(await rejection(webauthn().enrol(tenant, user, { attestation }))).toEqual(expired);
    // Five minutes.
    const late = await webauthn().registrationOptions(tenant, user, 'passkey');
    clock.advance(5 * 60_000);
    expect(await rejection(webauthn().enrol(tenant, user, { attestation: auth.register(late) }))).toEqual(expired);
    const inTime = await webauthn().registrationOptions(tenant, user, 'passkey');
    clock.advance(5 * 60_000 - 1);
    expect((await webauthn().enrol(tenant, user, { attestation: auth.register(inTime) })).credential.state).toBe('active');
  });

  it('refuses an attestation for another origin or challenge, and a passkey that does not verify its user', async () => {
    const user = await createUser(s, tenant);
    const elsewhere = new SoftAuthenticator('https://login.example.com.evil.net');
    const options = await webauthn().registrationOptions(tenant, user, 'security-key');
    expect(await rejection(webauthn().enrol(tenant, user, { attestation: elsewhere.register(options) }))).toMatchObject({ code: 'invalid-request' });
    await webauthn().registrationOptions(tenant, user, 'security-key');
    expect(await rejection(webauthn().enrol(tenant, user, { attestation: new SoftAuthenticator(ORIGIN).register(options) }))).toMatchObject({
      code: 'invalid-request',
    });
    // A passkey must verify its user; a security key need not.
    const noUv = new SoftAuthenticator(ORIGIN, Buffer.alloc(16), false);
    expect(await rejection(register(user, 'passkey', { auth: noUv }))).toMatchObject({ code: 'invalid-request' });
    expect((await register(user, 'security-key', { auth: noUv })).credential.state).toBe('active');
  });

  it('registers only the models a tenant allows, and no key twice in a tenant', async () => {
    const user = await createUser(s, tenant);
    const model = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const strict = withPolicy(tenant, { webauthnAaguids: ['00112233-4455-6677-8899-aabbccddeeff'] });
    expect(await rejection(register(user, 'passkey', { t: strict }))).toEqual({
      code: 'method-not-permitted',
      detail: 'your organisation does not allow this model of authenticator',
      extra: {},
      retryAfter: undefined,
    });
    const allowed = new SoftAuthenticator(ORIGIN, model);
    expect((await register(user, 'passkey', { t: strict, auth: allowed })).credential.publicData.aaguid).toBe('00112233-4455-6677-8899-aabbccddeeff');
    // The same key again, for this user or another of the tenant.
    expect(await rejection(register(user, 'passkey', { auth: allowed }))).toMatchObject({
      code: 'conflict',
      detail: 'this authenticator is already registered',
    });
    expect(await rejection(register(await createUser(s, tenant), 'passkey', { auth: allowed }))).toMatchObject({ code: 'conflict' });
    // Another tenant's user may register it there.
    expect((await register(await createUser(s, otherTenant), 'passkey', { t: otherTenant, auth: allowed })).credential.tenantId).toBe(otherTenant.id);
  });

  it('asks for an assertion by the candidates that have a key id, with user verification as the flow needs', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'security-key');
    const noId = { ...credential, externalId: null };
    const options = await challenge([credential, noId], flow());
    expect(options).toMatchObject({
      rpId: 'login.example.com',
      userVerification: 'preferred',
      allowCredentials: [{ id: authenticator.id, type: 'public-key', transports: ['usb'] }],
    });
    expect(options.allowCredentials).toHaveLength(1);
    expect((await challenge([], flow({ requireUserVerification: true }))).userVerification).toBe('required');
    expect((await challenge([], flow({ requireUserVerification: false }))).userVerification).toBe('preferred');
  });

  it('verifies an assertion once per challenge, within five minutes, proving a hardware key and the user where verified', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const f = flow();
    const options = await challenge([credential], f);
    clock.advance(1_000);
    const verified = await webauthn().verify([credential], { assertion: authenticator.assert(options.challenge) }, f);
    expect(verified).toEqual({ credential, amr: ['hwk', 'user'] });
    const after = await reload(credential);
    expect(after.signCount).toBe(1);
    expect(after.lastUsedAt).toBe(clock.now());
    expect(after.publicData).toEqual({ ...credential.publicData, counter: 1, backedUp: false });
    // The same challenge again (a replay, or a new assertion over it) is no way in.
    expect(await webauthn().verify([after], { assertion: authenticator.assert(options.challenge) }, f)).toBeUndefined();
    // A challenge lives five minutes.
    const late = await challenge([after], f);
    clock.advance(5 * 60_000);
    expect(await webauthn().verify([after], { assertion: authenticator.assert(late.challenge) }, f)).toBeUndefined();
    const inTime = await challenge([after], f);
    clock.advance(5 * 60_000 - 1);
    expect(await webauthn().verify([await reload(after)], { assertion: authenticator.assert(inTime.challenge) }, f)).toMatchObject({
      credential: { id: credential.id },
    });
    // A challenge is the flow's own.
    const mine = await challenge([after], f);
    expect(await webauthn().verify([await reload(after)], { assertion: authenticator.assert(mine.challenge) }, flow())).toBeUndefined();
  });

  it('refuses an assertion without a challenge, an assertion, or a candidate, spending the challenge', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const f = flow();
    expect(await webauthn().verify([credential], { assertion: authenticator.assert('never-issued') }, f)).toBeUndefined();
    let options = await challenge([credential], f);
    expect(await webauthn().verify([credential], {}, f)).toBeUndefined();
    expect(await webauthn().verify([credential], { assertion: authenticator.assert(options.challenge) }, f)).toBeUndefined();
    options = await challenge([credential], f);
    // Another key's assertion: not a candidate.
    const other = await register(user, 'passkey');
    expect(await webauthn().verify([credential], { assertion: other.authenticator.assert(options.challenge) }, f)).toBeUndefined();
    expect(await webauthn().verify([credential, other.credential], { assertion: authenticator.assert(options.challenge) }, f)).toBeUndefined();
    // Signed, but for another origin.
    options = await challenge([credential], f);
    expect(
      await webauthn().verify([credential], { assertion: authenticator.assert(options.challenge, { origin: 'https://evil.example' }) }, f),
    ).toBeUndefined();
    // The right one finds its candidate among several.
    options = await challenge([credential], f);
    expect(
      (await webauthn().verify([other.credential, await reload(credential)], { assertion: authenticator.assert(options.challenge) }, f))?.credential.id,
    ).toBe(credential.id);
  });

  it("refuses an assertion whose signature is not the key's, whatever its counter, and moves no counter", async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const f = flow();
    const options = await challenge([credential], f);
    const genuine = authenticator.assert(options.challenge, { counter: 10 }) as { response: Record<string, string> };
    const strangers = (new SoftAuthenticator(ORIGIN).assert(options.challenge, { counter: 10 }) as { response: Record<string, string> }).response.signature;
    expect(await webauthn().verify([credential], { assertion: { ...genuine, response: { ...genuine.response, signature: strangers } } }, f)).toBeUndefined();
    const after = await reload(credential);
    expect(after.signCount).toBe(0);
    expect(after.publicData.cloneSuspectedAt).toBeUndefined();
    // An assertion without a response at all.
    await challenge([credential], f);
    expect(await webauthn().verify([credential], { assertion: { id: authenticator.id } }, f)).toBeUndefined();
  });

  it('marks a cloned security key that verifies no user, in a flow that asks none', async () => {
    const user = await createUser(s, tenant);
    const noUv = new SoftAuthenticator(ORIGIN, Buffer.alloc(16), false);
    const { credential } = await register(user, 'security-key', { auth: noUv });
    const f = flow();
    let options = await challenge([credential], f);
    expect(await webauthn().verify([credential], { assertion: noUv.assert(options.challenge, { counter: 3 }) }, f)).toBeDefined();
    options = await challenge([credential], f);
    expect(await webauthn().verify([await reload(credential)], { assertion: noUv.assert(options.challenge, { counter: 3 }) }, f)).toBeUndefined();
    expect((await reload(credential)).publicData.cloneSuspectedAt).toBe(clock.now());
  });

  it('lets no key sign in as another user: the user handle must name the owner', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const f = flow();
    const options = await challenge([credential], f);
    const assertion = authenticator.assert(options.challenge) as { response: Record<string, unknown> };
    const forged = { ...assertion, response: { ...assertion.response, userHandle: Buffer.from('someone-else').toString('base64url') } };
    expect(await webauthn().verify([credential], { assertion: forged }, f)).toBeUndefined();
    // Without a user handle (a security key's assertion) the signature alone decides.
    const again = await challenge([credential], f);
    const plain = authenticator.assert(again.challenge) as { response: Record<string, unknown> };
    expect(await webauthn().verify([credential], { assertion: { ...plain, response: { ...plain.response, userHandle: undefined } } }, f)).toMatchObject({
      credential: { id: credential.id },
    });
  });

  it('asks user verification only where the flow does', async () => {
    const user = await createUser(s, tenant);
    const noUv = new SoftAuthenticator(ORIGIN, Buffer.alloc(16), false);
    const { credential } = await register(user, 'security-key', { auth: noUv });
    const f = flow({ requireUserVerification: true });
    let options = await challenge([credential], f);
    expect(await webauthn().verify([credential], { assertion: noUv.assert(options.challenge) }, f)).toBeUndefined();
    const g = flow();
    options = await challenge([credential], g);
    expect(await webauthn().verify([await reload(credential)], { assertion: noUv.assert(options.challenge) }, g)).toMatchObject({ amr: ['hwk'] });
  });

  it('proves a software key for a synced passkey, and keeps no counter for an authenticator without one', async () => {
    const user = await createUser(s, tenant);
    const auth = synced(new SoftAuthenticator(ORIGIN));
    const { credential } = await register(user, 'passkey', { auth });
    const f = flow();
    for (let i = 0; i < 2; i++) {
      const options = await challenge([credential], f);
      clock.advance(1_000);
      const current = await reload(credential);
      expect(await webauthn().verify([current], { assertion: auth.assert(options.challenge, { counter: 0 }) }, f)).toEqual({
        credential: current,
        amr: ['swk', 'user'],
      });
      const after = await reload(credential);
      expect(after.publicData).toMatchObject({ counter: 0, backedUp: true });
      expect(after.publicData.cloneSuspectedAt).toBeUndefined();
      expect(after.signCount).toBe(0);
      expect(after.lastUsedAt).toBe(clock.now());
    }
  });

  it('refuses a counter that did not move forward, and marks the key cloned only when the key really signed it', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const f = flow();
    let options = await challenge([credential], f);
    expect(await webauthn().verify([credential], { assertion: authenticator.assert(options.challenge, { counter: 5 }) }, f)).toBeDefined();
    // Someone who knows the public credential id sends a low counter with a signature that is not the key's.
    options = await challenge([credential], f);
    const forged = authenticator.assert(options.challenge, { counter: 3 }) as { response: Record<string, string> };
    const strangers = (new SoftAuthenticator(ORIGIN).assert(options.challenge, { counter: 3 }) as { response: Record<string, string> }).response.signature;
    const badSig = { ...forged, response: { ...forged.response, signature: strangers } };
    expect(await webauthn().verify([await reload(credential)], { assertion: badSig }, f)).toBeUndefined();
    expect((await reload(credential)).publicData.cloneSuspectedAt).toBeUndefined();
    // The same counter again, really signed by the key: a second authenticator with this key.
    options = await challenge([credential], f);
    clock.advance(2_000);
    expect(await webauthn().verify([await reload(credential)], { assertion: authenticator.assert(options.challenge, { counter: 5 }) }, f)).toBeUndefined();
    const marked = await reload(credential);
    expect(marked.publicData).toEqual({ ...credential.publicData, counter: 5, backedUp: false, cloneSuspectedAt: clock.now() });
    expect(marked.signCount).toBe(5);
  });

  it('compares with the guarded counter even where the public data lags behind it, and the other way round', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const f = flow();
    // The column says 7, the copy in public data 0.
    await s.durable.db.updateTable('credentials').set({ sign_count: 7 }).where('id', '=', credential.id).execute();
    let options = await challenge([credential], f);
    expect(await webauthn().verify([await reload(credential)], { assertion: authenticator.assert(options.challenge, { counter: 6 }) }, f)).toBeUndefined();
    expect((await reload(credential)).publicData).toMatchObject({ counter: 7, cloneSuspectedAt: clock.now() });
    // The copy says 9 (a credential from before the column), the column 0.
    const second = await register(user, 'passkey');
    await s.durable.db
      .updateTable('credentials')
      .set({ public_data: JSON.stringify({ ...second.credential.publicData, counter: 9 }) })
      .where('id', '=', second.credential.id)
      .execute();
    options = await challenge([second.credential], f);
    expect(
      await webauthn().verify([await reload(second.credential)], { assertion: second.authenticator.assert(options.challenge, { counter: 8 }) }, f),
    ).toBeUndefined();
    expect((await reload(second.credential)).publicData).toMatchObject({ counter: 9, cloneSuspectedAt: clock.now() });
    options = await challenge([second.credential], f);
    expect(
      await webauthn().verify([await reload(second.credential)], { assertion: second.authenticator.assert(options.challenge, { counter: 10 }) }, f),
    ).toBeDefined();
    expect((await reload(second.credential)).signCount).toBe(10);
  });

  it('during an outage, refuses a counter another node already reached, and marks the key', async () => {
    const user = await createUser(s, tenant);
    const { authenticator, credential } = await register(user, 'passkey');
    const shared = new MemoryEphemeralStore(clock);
    const holds = new SingleUseHolds(() => true, shared);
    const credentials = Object.assign(Object.create(s.credentials) as Credentials, { holds });
    const method = createWebAuthnMethod({ clock, credentials, ephemeral: s.ephemeral, rp: relyingPartyFrom(ORIGIN) });
    // Another node accepted counter 4 from this key.
    await shared.raiseTo(`mark:webauthn-counter:${credential.id}`, 4, 60_000);
    const f = flow();
    let options = await challenge([credential], f, method);
    expect(await method.verify([credential], { assertion: authenticator.assert(options.challenge, { counter: 4 }) }, f)).toBeUndefined();
    expect((await reload(credential)).publicData.cloneSuspectedAt).toBe(clock.now());
    expect((await reload(credential)).signCount).toBe(0);
    options = await challenge([credential], f, method);
    expect(await method.verify([await reload(credential)], { assertion: authenticator.assert(options.challenge, { counter: 5 }) }, f)).toBeDefined();
    expect(await shared.get(`mark:webauthn-counter:${credential.id}`)).toBe(5);
    expect((await reload(credential)).signCount).toBe(5);
  });
});
