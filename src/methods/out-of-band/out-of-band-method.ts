/** One method implementation for codes by text, voice and email: send within cooldown and limits, verify once. */
import type { Clock } from '../../clock.ts';
import type { KeyRing } from '../../crypto/key-ring.ts';
import type { KeyedHasher } from '../../crypto/keyed-hash.ts';
import { newId } from '../../crypto/random.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { AppError } from '../../errors/app-error.ts';
import type { Channel } from '../../delivery/channel.ts';
import type { DeliveryPort } from '../../delivery/delivery.ts';
import { ChannelDown } from '../../delivery/provider-chain.ts';
import { destinationIdentity, maskDestination, normaliseDestination, phoneCountryAllowed } from '../../delivery/destination.ts';
import { renderCodeMessage } from '../../delivery/messages.ts';
import { secretContext, type Credential, type Credentials } from '../credentials.ts';
import type { Method } from '../method.ts';
import type { OneTimeCodes } from './one-time-codes.ts';
import type { SendLimits, SendRequester } from './send-limits.ts';
import type { SentCode } from './sent-code.ts';
import { NumberRecord, parseRecord } from '../../store/parse-record.ts';

export interface OutOfBandDeps {
  credentials: Credentials;
  keyRing: KeyRing;
  clock: Clock;
  ephemeral: EphemeralStore;
  delivery: DeliveryPort;
  codes: OneTimeCodes;
  sendLimits: SendLimits;
  /** Keys the per-destination send limit without storing the destination. */
  destinationHasher: KeyedHasher;
  /** Host of the public URL: the origin an SMS code is bound to. */
  publicHost: string;
  resendCooldownMs: number;
  /** Countries whose phone numbers may get codes (delivery.allowedCountries); all when absent. */
  allowedCountries?: readonly string[] | undefined;
}

const CHANNEL_NAMES: Record<Channel, string> = { sms: 'text messages', voice: 'phone calls', email: 'email' };
// RFC 8176: a code by text message, by telephone call, or a one-time password (email has no value of its own).
const AMR: Record<Channel, string[]> = { sms: ['sms'], voice: ['tel'], email: ['otp'] };
// A pending phone or address not confirmed within this time can no longer be confirmed.
const PENDING_LIFETIME_MS = 60 * 60_000;

export type { SentCode } from './sent-code.ts';

export interface OutOfBandMethod extends Method {
  readonly channel: Channel;
  /** Whether this server has any provider for the channel at all (down or not). */
  configured(): boolean;
  /** Sends a fresh confirmation code to a pending credential. */
  resendConfirmation(tenant: Tenant, credential: Credential, requester?: SendRequester): Promise<{ delivery: SentCode }>;
}

/**
 * SMS, voice and email codes: one method per channel, the same rules for all.
 * The destination is sealed with the key ring like any other secret; answers
 * show it masked. A send that no provider could make is `method-unavailable`,
 * and the sign-in offers the user's other methods.
 */
export function createOutOfBandMethod(channel: Channel, deps: OutOfBandDeps): OutOfBandMethod {
  const destinationOf = (credential: Credential) => deps.keyRing.open(credential.secret ?? '', secretContext(channel, credential.id)).toString('utf8');
  const flowScope = (flowId: string, credentialId: string) => `flow:${flowId}:${credentialId}`;
  const enrolScope = (credentialId: string) => `enrol:${credentialId}`;

  const unavailable = () => new AppError('method-unavailable', `Codes by ${CHANNEL_NAMES[channel]} cannot be sent right now`);

  /** Sends a new code for `scope`, within the resend cooldown and the send limits. */
  const sendCode = async (tenant: Tenant, credential: Credential, scope: string, requester: SendRequester | undefined): Promise<{ delivery: SentCode }> => {
    if (!deps.delivery.available(channel)) throw unavailable();
    const cooldownKey = `otc-sent:${scope}`;
    const now = deps.clock.now();
    if (!(await deps.ephemeral.setIfAbsent(cooldownKey, now, deps.resendCooldownMs))) {
      const sentAt = parseRecord(NumberRecord, await deps.ephemeral.get(cooldownKey)) ?? now;
      throw new AppError('code-recently-sent', undefined, {}, Math.max(1, Math.ceil((sentAt + deps.resendCooldownMs - now) / 1000)));
    }
    const to = destinationOf(credential);
    try {
      const destination = deps.destinationHasher.hash(`${channel}:${destinationIdentity(channel, to)}`);
      const refund = await deps.sendLimits.consume({
        tenantId: tenant.id,
        userId: credential.userId,
        // A confirmed destination's cap is its owner's alone: strangers typing the same address (any tenant,
        // any case or +tag) to enrol it spend the cap of unconfirmed sends to it, never the one the owner signs
        // in with (round 29: ten enrolments from another tenant kept an owner's email codes refused for an hour).
        destinationKey: credential.state === 'active' ? `owned|${tenant.id}|${credential.userId}|${destination}` : destination,
        requester,
      });
      const { code, expiresAt } = await deps.codes.issue(scope);
      const lifetimeMinutes = Math.round(deps.codes.settings.lifetimeMs / 60_000);
      try {
        await deps.delivery.send(renderCodeMessage({ channel, to, code, tenantName: tenant.name, host: deps.publicHost, lifetimeMinutes }));
      } catch (err) {
        await Promise.all([deps.codes.revoke(scope), refund()]);
        if (err instanceof ChannelDown) throw unavailable();
        throw err;
      }
      return {
        delivery: {
          channel,
          to: maskDestination(channel, to),
          expiresAt: new Date(expiresAt).toISOString(),
          resendAfterSeconds: Math.ceil(deps.resendCooldownMs / 1000),
        },
      };
    } catch (err) {
      // Nothing went out: asking again at once is fine.
      await deps.ephemeral.delete(cooldownKey);
      throw err;
    }
  };

  return {
    type: channel,
    channel,
    enrolmentProvesPossession: false,

    available: () => deps.delivery.available(channel),
    configured: () => deps.delivery.configured(channel),

    async enrol(tenant, user, input) {
      if (!deps.delivery.configured(channel)) throw new AppError('method-unavailable', `This server has no provider for ${CHANNEL_NAMES[channel]}`);
      // Stryker disable next-line StringLiteral: any fixed text but a destination is refused the same way as none ('' or the mutant's words).
      const to = normaliseDestination(channel, input.to ?? '');
      if (!to) {
        throw new AppError(
          'invalid-request',
          channel === 'email' ? 'enter an email address, such as name@example.com' : 'enter a phone number with its country code, such as +44 7700 900123',
        );
      }
      if (channel !== 'email' && !phoneCountryAllowed(to, deps.allowedCountries)) throw new AppError('destination-not-allowed');
      if (!deps.delivery.available(channel)) throw unavailable();
      const id = newId();
      const masked = maskDestination(channel, to);
      const credential = await deps.credentials.insert({
        id,
        tenantId: tenant.id,
        userId: user.id,
        type: channel,
        label: input.label?.trim() || masked,
        state: 'pending',
        secret: deps.keyRing.seal(to, secretContext(channel, id)),
        publicData: { to: masked },
        bySession: input.bySession,
      });
      try {
        const sent = await sendCode(tenant, credential, enrolScope(id), input.requester);
        return { credential, reveal: { to: masked, ...sent } };
      } catch (err) {
        // Nothing could be sent: leave no unconfirmable method behind.
        await deps.credentials.deletePending(credential);
        throw err;
      }
    },

    async reveal(_tenant, _user, credential) {
      return { to: credential.publicData.to };
    },

    async resendConfirmation(tenant, credential, requester) {
      if (credential.state !== 'pending') throw new AppError('invalid-state', 'this method is already active');
      return sendCode(tenant, credential, enrolScope(credential.id), requester);
    },

    async confirm(credential, code, activation) {
      if (deps.clock.now() - credential.createdAt > PENDING_LIFETIME_MS) return false;
      if (!(await deps.codes.check(enrolScope(credential.id), code))) return false;
      return deps.credentials.activate(credential, activation);
    },

    async challenge(candidates, flow) {
      // Several numbers of one type: the default, else the first, gets the code.
      const credential = candidates.find((c) => c.isDefault) ?? candidates[0]!;
      return sendCode(
        flow.tenant,
        credential,
        flowScope(flow.flowId, credential.id),
        flow.ip !== undefined ? { origin: `flow:${flow.flowId}`, ip: flow.ip } : undefined,
      );
    },

    async verify(candidates, input, flow) {
      for (const credential of candidates) {
        // Stryker disable next-line StringLiteral: a missing code is checked as a string no code equals (codes are digits); '' or other words alike.
        if (await deps.codes.check(flowScope(flow.flowId, credential.id), input.code ?? '')) {
          await deps.credentials.markUsed(credential);
          return { credential, amr: AMR[channel] };
        }
      }
      return undefined;
    },
  };
}
