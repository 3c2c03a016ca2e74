import { createHash } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { KeyRing } from '../../crypto/key-ring.ts';
import { newId, randomToken } from '../../crypto/random.ts';
import type { Tenant } from '../../directory/tenant.ts';
import { AppError } from '../../errors/app-error.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import type { SigninEventInput } from '../../activity/signin-events.ts';
import { secretContext, type Activation, type Credential, type Credentials } from '../credentials.ts';
import { qrCodeSvg } from '../qr-code-svg.ts';
import type { Method } from '../method.ts';
import { decisionMessage, parseDevicePublicKey, readMessage, subscriptionMessage, verifyDeviceSignature, type DevicePublicKey } from './device-signature.ts';
import type { PushChallenge, PushChallenges, PushDecisionReason } from './push-challenges.ts';
import type { PushLive } from './push-live.ts';
import type { WebPushSender, WebPushSubscription } from './web-push-sender.ts';
import { Type, type Static } from 'typebox';
import { parseRecord } from '../../store/parse-record.ts';
import type { SigninReason } from '../../activity/signin-reasons.ts';

export interface PushDeps {
  credentials: Credentials;
  keyRing: KeyRing;
  clock: Clock;
  ephemeral: EphemeralStore;
  publicUrl: string;
  pushChallenges: PushChallenges;
  webPush: WebPushSender;
  pushLive: PushLive;
  /** Every request, approval and denial goes to the sign-in log. */
  recordSignin: (event: SigninEventInput) => Promise<void>;
  /** "This wasn't me" on a device: flag the account and keep it in the audit log. */
  onPushReported: (tenant: Tenant, userId: string, details: Record<string, unknown>) => Promise<void>;
  /** A device paired: a method added, to the audit log (and so to the owner's security notice) like every other. */
  onPaired: (tenant: Tenant, userId: string, device: { id: string; label: string }) => Promise<void>;
}

/** A pending sign-in as a paired device sees it: never the number, never the flow's handle. */
export interface DeviceRequest {
  id: string;
  binding: string;
  username: string;
  app: string | null;
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
  expiresAt: string;
}

export interface DeviceDecision {
  decision: 'approve' | 'deny';
  number: string;
  time: number;
  signature: string;
  /** Deny only: "this wasn't me". */
  notMe?: boolean | undefined;
}

export interface PushMethod extends Method {
  /** A device finishes pairing: the token from the security-info page, its public key, and maybe a push subscription. */
  pair(
    tenant: Tenant,
    token: string,
    input: { publicKey: unknown; name?: string | undefined; subscription?: unknown },
  ): Promise<{ deviceId: string; username: string }>;
  /** The paired device a signed read names, or 401. */
  authenticateDevice(tenant: Tenant, deviceId: string, time: number, signature: string): Promise<Credential>;
  /** The request waiting for this device's user, if any. */
  pendingFor(tenant: Tenant, device: Credential): Promise<DeviceRequest | undefined>;
  decide(
    tenant: Tenant,
    deviceId: string,
    challengeId: string,
    decision: DeviceDecision,
    ctx: { ip?: string | undefined; userAgent?: string | undefined },
  ): Promise<{ state: 'approved' | 'denied'; reason: string }>;
  subscribe(tenant: Tenant, deviceId: string, subscription: unknown, time: number, signature: string): Promise<void>;
  vapidPublicKey(): Promise<string>;
  readonly live: PushLive;
}

// A pairing link works this long; the page that shows it says so.
export const PAIRING_LIFETIME_MS = 10 * 60_000;
// A device's signed read or answer must be this fresh (its clock may be a little off).
const SIGNATURE_SKEW_MS = 120_000;

/** A pairing link's record, taken once; parsed, never cast. */
const PairingRecord = Type.Object({
  tenantId: Type.String(),
  userId: Type.String(),
  username: Type.String(),
  credentialId: Type.String(),
  activation: Type.Union([Type.Literal('any'), Type.Literal('first-method')]),
});
type Pairing = Static<typeof PairingRecord>;

const pairingKey = (token: string) => `push:pair:${createHash('sha256').update(token).digest('base64url')}`;

/**
 * Sign-in by approval in the Steadfast Authenticator, the app this server
 * serves at /t/{t}/authenticator. The device holds a non-extractable P-256
 * key; its public half is the credential. A challenge opens a request with a
 * two-digit number shown on the sign-in page; the device's signed answer over
 * (request, flow, number, time) decides it; the sign-in's verification takes
 * the approval once.
 */
export function createPushMethod(deps: PushDeps): PushMethod {
  const sealContext = (id: string) => secretContext('push', id);
  const keyOf = (c: Credential): DevicePublicKey | undefined => parseDevicePublicKey(c.publicData.publicKey);
  const subscriptionOf = (c: Credential): WebPushSubscription | undefined => {
    if (!c.secret) return undefined;
    try {
      return JSON.parse(deps.keyRing.open(c.secret, sealContext(c.id)).toString('utf8')) as WebPushSubscription;
      // Stryker disable next-line BlockStatement: equivalent (an empty catch ends the function, which returns undefined as well)
    } catch {
      return undefined;
    }
  };

  const pairingUrl = (tenant: Tenant, token: string) => `${deps.publicUrl}/t/${tenant.slug}/authenticator#pair=${token}`;

  /** A new pairing link for a pending device credential. The token travels in the URL's fragment: never in a request line or a log. */
  const newPairing = async (tenant: Tenant, userId: string, username: string, credentialId: string, activation: Activation) => {
    const token = randomToken(24);
    await deps.ephemeral.set(pairingKey(token), { tenantId: tenant.id, userId, username, credentialId, activation } satisfies Pairing, PAIRING_LIFETIME_MS);
    const url = pairingUrl(tenant, token);
    return {
      pairingUrl: url,
      qrCodeSvg: await qrCodeSvg(url),
      expiresAt: new Date(deps.clock.now() + PAIRING_LIFETIME_MS).toISOString(),
      lifetimeMinutes: PAIRING_LIFETIME_MS / 60_000,
    };
  };

  const fresh = (time: number) => Number.isSafeInteger(time) && Math.abs(deps.clock.now() - time) <= SIGNATURE_SKEW_MS;

  const device = async (tenant: Tenant, deviceId: string): Promise<Credential | undefined> => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(deviceId)) return undefined;
    const found = await deps.credentials.findByExternalId(tenant.id, deviceId);
    return found && found.type === 'push' && found.state === 'active' && tenant.policy.allowedMethods.includes('push') ? found : undefined;
  };

  const record = (
    challenge: PushChallenge,
    outcome: 'success' | 'failure',
    reason: SigninReason,
    ctx?: { ip?: string | undefined; userAgent?: string | undefined },
  ) =>
    deps.recordSignin({
      tenantId: challenge.tenantId,
      userId: challenge.userId,
      username: challenge.username,
      // The sign-in's own browser and address; the device's only where it is the device that acted.
      ip: ctx?.ip ?? challenge.context.ip,
      userAgent: ctx?.userAgent ?? challenge.context.userAgent,
      app: challenge.context.app,
      step: 'second-factor',
      outcome,
      reason,
      method: 'push',
    });

  /** Tells the devices: the live stream where the app is open, Web Push where it is closed. True if any was reached. */
  const deliver = async (tenant: Tenant, challenge: PushChallenge, devices: Credential[]): Promise<boolean> => {
    const payload = JSON.stringify({
      v: 1,
      kind: 'signin-request',
      tenant: tenant.slug,
      id: challenge.id,
      app: challenge.context.app ?? null,
      ip: challenge.context.ip ?? null,
    });
    const reached = await Promise.all(
      devices.map(async (d) => {
        if (await deps.pushLive.isOpen(tenant.id, d.id)) return true;
        const subscription = subscriptionOf(d);
        if (!subscription) return false;
        const result = await deps.webPush.send(subscription, payload, Math.ceil((challenge.expiresAt - deps.clock.now()) / 1000));
        // The browser dropped the subscription: stop sending to it.
        if (result === 'gone') await deps.credentials.replaceSecret(d, null);
        return result === 'sent';
      }),
    );
    deps.pushLive.notify(tenant.id, challenge.userId);
    return reached.some(Boolean);
  };

  return {
    type: 'push',
    enrolmentProvesPossession: false,
    live: deps.pushLive,

    async enrol(tenant, user, input) {
      const id = newId();
      const credential = await deps.credentials.insert({
        id,
        tenantId: tenant.id,
        userId: user.id,
        type: 'push',
        label: input.label?.trim() || 'Steadfast Authenticator',
        state: 'pending',
        // The device is found by this id when it signs; it is no secret.
        externalId: id,
        bySession: input.bySession,
      });
      return { credential, reveal: await newPairing(tenant, user.id, user.username, id, input.activation ?? 'any') };
    },

    async reveal(tenant, user, credential) {
      return newPairing(tenant, user.id, user.username, credential.id, 'any');
    },

    async pair(tenant, token, input) {
      const publicKey = parseDevicePublicKey(input.publicKey);
      if (!publicKey) throw new AppError('invalid-request', 'publicKey must be a P-256 public key (JWK)');
      const subscription = input.subscription === undefined || input.subscription === null ? undefined : deps.webPush.parse(input.subscription);
      if (input.subscription && !subscription) throw new AppError('invalid-request', 'subscription is not a push subscription this server can send to');
      // Taken, not read: a pairing link pairs one device, once.
      const pairing = typeof token === 'string' && token.length <= 64 ? parseRecord(PairingRecord, await deps.ephemeral.take(pairingKey(token))) : undefined;
      if (!pairing || pairing.tenantId !== tenant.id)
        throw new AppError('invalid-code', 'This pairing link has expired or was used. Add the authenticator again from your security info.');
      const name = input.name?.trim().slice(0, 100);
      const pending = await deps.credentials.get(tenant.id, pairing.userId, pairing.credentialId);
      const activated =
        pending?.state === 'pending' &&
        (await deps.credentials.activate(pending, pairing.activation, {
          ...(name ? { label: name } : {}),
          publicData: { publicKey, pairedAt: new Date(deps.clock.now()).toISOString() },
          secret: subscription ? deps.keyRing.seal(JSON.stringify(subscription), sealContext(pairing.credentialId)) : null,
        }));
      if (!activated) throw new AppError('invalid-code', 'This pairing link has expired or was used. Add the authenticator again from your security info.');
      // Activated here, by the device, not through method management: told here as every other method added is.
      await deps.onPaired(tenant, pairing.userId, { id: pairing.credentialId, label: name || pending.label });
      return { deviceId: pairing.credentialId, username: pairing.username };
    },

    async authenticateDevice(tenant, deviceId, time, signature) {
      const found = await device(tenant, deviceId);
      const key = found && keyOf(found);
      if (!found || !key || !fresh(time) || !verifyDeviceSignature(key, readMessage(deviceId, time), signature)) {
        throw new AppError('unauthenticated', 'this device is not paired, or its signature did not verify');
      }
      return found;
    },

    async pendingFor(tenant, dev) {
      const challenge = await deps.pushChallenges.pendingFor(tenant.id, dev.userId);
      if (!challenge || !challenge.deviceIds.includes(dev.id)) return undefined;
      return {
        id: challenge.id,
        binding: challenge.binding,
        username: challenge.username,
        app: challenge.context.app ?? null,
        ip: challenge.context.ip ?? null,
        userAgent: challenge.context.userAgent ?? null,
        createdAt: new Date(challenge.createdAt).toISOString(),
        expiresAt: new Date(challenge.expiresAt).toISOString(),
      };
    },

    async decide(tenant, deviceId, challengeId, answer, ctx) {
      // The request first: an id another tenant's (or nobody's) is answered the same, whoever asks.
      const challenge = await deps.pushChallenges.get(challengeId);
      if (!challenge || challenge.tenantId !== tenant.id) throw new AppError('not-found', 'This request has expired or was already answered.');
      const dev = await device(tenant, deviceId);
      const key = dev && keyOf(dev);
      if (!dev || !key) throw new AppError('unauthenticated', 'this device is not paired');
      if (!challenge.deviceIds.includes(dev.id)) throw new AppError('not-found', 'This request has expired or was already answered.');
      const number = answer.decision === 'approve' ? answer.number : '';
      const signed = verifyDeviceSignature(
        key,
        decisionMessage({ decision: answer.decision, challengeId, binding: challenge.binding, number, time: answer.time }),
        answer.signature,
      );
      if (!signed || !fresh(answer.time)) {
        // Nothing changes: a forged answer neither approves nor uses the request up.
        await record(challenge, 'failure', 'push_bad_signature', ctx);
        throw new AppError('unauthenticated', 'the device signature did not verify');
      }
      const decided = await deps.pushChallenges.decide(challengeId, dev.id, answer.decision, number, answer.notMe === true);
      // Answered already (a replay, another device) or expired a moment ago.
      if (!decided) throw new AppError('not-found', 'This request has expired or was already answered.');
      deps.pushLive.notify(tenant.id, challenge.userId);
      const { outcome } = decided;
      const reason = (
        { approved: 'push_approved', denied: 'push_denied', 'not-me': 'push_reported', 'wrong-number': 'push_wrong_number' } as const satisfies Record<
          PushDecisionReason,
          SigninReason
        >
      )[outcome.reason];
      await record(challenge, outcome.state === 'approved' ? 'success' : 'failure', reason);
      if (outcome.reason === 'not-me')
        await deps.onPushReported(tenant, challenge.userId, {
          via: 'push',
          deviceId: dev.id,
          app: challenge.context.app ?? null,
          ip: challenge.context.ip ?? null,
        });
      return { state: outcome.state, reason: outcome.reason };
    },

    async subscribe(tenant, deviceId, subscription, time, signature) {
      const dev = await device(tenant, deviceId);
      const key = dev && keyOf(dev);
      const parsed = subscription === null ? null : deps.webPush.parse(subscription);
      if (parsed === undefined) throw new AppError('invalid-request', 'subscription is not a push subscription this server can send to');
      if (!dev || !key || !fresh(time) || !verifyDeviceSignature(key, subscriptionMessage(deviceId, parsed, time), signature)) {
        throw new AppError('unauthenticated', 'this device is not paired, or its signature did not verify');
      }
      // Each change must be newer than the last one taken: a captured request replayed later cannot put an old subscription back.
      if (!(await deps.ephemeral.raiseTo(`push:subscribed:${dev.id}`, time, 2 * SIGNATURE_SKEW_MS))) {
        throw new AppError('unauthenticated', 'this subscription change is older than one already made');
      }
      await deps.credentials.replaceSecret(dev, parsed ? deps.keyRing.seal(JSON.stringify(parsed), sealContext(dev.id)) : null);
    },

    vapidPublicKey: () => deps.webPush.publicKey(),

    async challenge(candidates, flow) {
      const devices = candidates.filter((c) => keyOf(c) !== undefined);
      if (devices.length === 0) throw new AppError('method-unavailable', 'No paired device can get sign-in requests');
      const { challenge, fresh: opened } = await deps.pushChallenges.open({
        tenantId: flow.tenant.id,
        userId: devices[0]!.userId,
        username: flow.username ?? '',
        flowId: flow.flowId,
        deviceIds: devices.map((d) => d.id),
        context: { app: flow.app, ip: flow.ip, userAgent: flow.userAgent },
      });
      if (opened) {
        if (!(await deliver(flow.tenant, challenge, devices))) {
          await deps.pushChallenges.withdraw(challenge);
          throw new AppError('method-unavailable', 'Sign-in requests cannot reach your device right now');
        }
        await record(challenge, 'success', 'push_requested');
      }
      return { push: { number: challenge.number, expiresAt: new Date(challenge.expiresAt).toISOString() } };
    },

    async verify(candidates, _input, flow) {
      const approval = await deps.pushChallenges.takeApproval(flow.flowId);
      const credential = approval && candidates.find((c) => c.id === approval.deviceId);
      if (!credential) return undefined;
      await deps.credentials.markUsed(credential);
      return { credential, amr: ['swk'] };
    },

    async status(flow) {
      return deps.pushChallenges.state(flow.flowId);
    },
  };
}
