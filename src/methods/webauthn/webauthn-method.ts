/** Passkeys and security keys (WebAuthn) on @simplewebauthn/server: registration and sign-in ceremonies, one challenge each, used once. */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type RegistrationResponseJSON,
} from './simplewebauthn-server.ts';
import type { Clock } from '../../clock.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { User } from '../../directory/users.ts';
import { AppError } from '../../errors/app-error.ts';
import type { Credentials, Credential } from '../credentials.ts';
import type { Method } from '../method.ts';
import { Type } from 'typebox';
import { parseRecord } from '../../store/parse-record.ts';

/** Where WebAuthn ceremonies are valid: from STEADFAST_PUBLIC_URL. */
export interface RelyingParty {
  id: string;
  origins: string[];
}

export interface WebAuthnDeps {
  clock: Clock;
  credentials: Credentials;
  ephemeral: EphemeralStore;
  rp: RelyingParty;
}

/** A passkey is discoverable and verifies the user; a security key is a second factor. */
export type AuthenticatorKind = 'passkey' | 'security-key';

/** What a registration or a sign-in ceremony keeps between its options and its answer. */
const RegistrationCeremony = Type.Object({ challenge: Type.String(), kind: Type.Union([Type.Literal('passkey'), Type.Literal('security-key')]) });
const AuthenticationCeremony = Type.Object({ challenge: Type.String() });

/** What Steadfast keeps of a WebAuthn credential: public data only. */
export interface WebAuthnPublicData {
  kind: AuthenticatorKind;
  publicKey: string;
  counter: number;
  transports: string[];
  aaguid: string;
  /** Backup eligible (a synced passkey) and backed up, from the authenticator's flags. */
  backupEligible: boolean;
  backedUp: boolean;
  /** Set when a signature counter went backwards: the authenticator may have been cloned. */
  cloneSuspectedAt?: number;
}

const CEREMONY_TTL_MS = 5 * 60_000;
// How long a counter's high-water mark is held in the ephemeral store during an outage: longer than
// any outage is expected to last; after it the database's `sign_count` (replayed, highest wins) holds.
const COUNTER_HOLD_MS = 7 * 24 * 3_600_000;
const registrationKey = (userId: string) => `webauthn:reg:${userId}`;
const authenticationKey = (flowId: string) => `webauthn:auth:${flowId}`;

export function relyingPartyFrom(publicUrl: string): RelyingParty {
  const url = new URL(publicUrl);
  return { id: url.hostname, origins: [url.origin] };
}

export interface WebAuthnMethod extends Method {
  registrationOptions(tenant: Tenant, user: User, kind: AuthenticatorKind): Promise<PublicKeyCredentialCreationOptionsJSON>;
}

/**
 * Whether the assertion carries a valid signature by this credential's key,
 * whatever its counter says: the same verification with the counter check
 * taken out (a stored counter of 0 accepts any).
 */
async function signedByKey(
  assertion: AuthenticationResponseJSON,
  challenge: string,
  credential: Credential,
  stored: WebAuthnPublicData,
  requireUserVerification: boolean,
  rp: RelyingParty,
): Promise<boolean> {
  try {
    const result = await verifyAuthenticationResponse({
      response: assertion,
      expectedChallenge: challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      credential: { id: credential.externalId!, publicKey: Buffer.from(stored.publicKey, 'base64url'), counter: 0, transports: stored.transports as never },
      requireUserVerification,
    });
    return result.verified;
  } catch {
    return false;
  }
}

export function createWebAuthnMethod(deps: WebAuthnDeps): WebAuthnMethod {
  const { rp } = deps;
  const data = (c: Credential) => c.publicData as unknown as WebAuthnPublicData;

  return {
    type: 'webauthn',
    enrolmentProvesPossession: true,

    async registrationOptions(tenant, user, kind) {
      const existing = (await deps.credentials.listForUser(tenant.id, user.id, 'active')).filter((c) => c.type === 'webauthn' && c.externalId);
      const options = await generateRegistrationOptions({
        rpName: tenant.name,
        rpID: rp.id,
        userName: user.username,
        // The user handle is the user id: a passkey names its user without a username.
        userID: new TextEncoder().encode(user.id),
        attestationType: 'none',
        excludeCredentials: existing.map((c) => ({ id: c.externalId!, transports: data(c).transports })),
        authenticatorSelection:
          kind === 'passkey'
            ? // Stryker disable next-line BooleanLiteral: equivalent (@simplewebauthn/server sets requireResidentKey from residentKey: 'required' makes it true whatever is given)
              { residentKey: 'required', requireResidentKey: true, userVerification: 'required' }
            : { residentKey: 'discouraged', userVerification: 'preferred', authenticatorAttachment: 'cross-platform' },
      });
      await deps.ephemeral.set(registrationKey(user.id), { challenge: options.challenge, kind }, CEREMONY_TTL_MS);
      return options;
    },

    async enrol(tenant, user, input) {
      const ceremony = parseRecord(RegistrationCeremony, await deps.ephemeral.take(registrationKey(user.id)));
      if (!ceremony) throw new AppError('invalid-state', 'the registration has expired; start adding the key again');
      let verification;
      try {
        verification = await verifyRegistrationResponse({
          response: input.attestation as RegistrationResponseJSON,
          expectedChallenge: ceremony.challenge,
          expectedOrigin: rp.origins,
          expectedRPID: rp.id,
          requireUserVerification: ceremony.kind === 'passkey',
        });
      } catch {
        throw new AppError('invalid-request', 'the authenticator response could not be verified');
      }
      if (!verification.verified) throw new AppError('invalid-request', 'the authenticator response could not be verified');
      const info = verification.registrationInfo;
      const allowed = tenant.policy.webauthnAaguids;
      if (allowed.length > 0 && !allowed.includes(info.aaguid))
        throw new AppError('method-not-permitted', 'your organisation does not allow this model of authenticator');
      if (await deps.credentials.findByExternalId(tenant.id, info.credential.id)) throw new AppError('conflict', 'this authenticator is already registered');

      const publicData: WebAuthnPublicData = {
        kind: ceremony.kind,
        publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: info.credential.transports ?? [],
        aaguid: info.aaguid,
        backupEligible: info.credentialDeviceType === 'multiDevice',
        backedUp: info.credentialBackedUp,
      };
      const credential = await deps.credentials.insert({
        tenantId: tenant.id,
        userId: user.id,
        type: 'webauthn',
        label: input.label?.trim() || (ceremony.kind === 'passkey' ? 'Passkey' : 'Security key'),
        state: 'active',
        externalId: info.credential.id,
        publicData: publicData as unknown as Record<string, unknown>,
        activation: input.activation,
        bySession: input.bySession,
      });
      return { credential, reveal: {} };
    },

    async challenge(candidates, flow) {
      const options = await generateAuthenticationOptions({
        rpID: rp.id,
        // Empty for a passkey sign-in: the browser offers every discoverable credential for this site.
        allowCredentials: candidates.filter((c) => c.externalId).map((c) => ({ id: c.externalId!, transports: data(c).transports })),
        userVerification: flow.requireUserVerification ? 'required' : 'preferred',
      });
      await deps.ephemeral.set(authenticationKey(flow.flowId), { challenge: options.challenge }, CEREMONY_TTL_MS);
      return { webauthn: options };
    },

    async verify(candidates, input, flow) {
      const assertion = input.assertion as AuthenticationResponseJSON | undefined;
      // Each challenge answers once, right or wrong: a retry asks for a new one.
      const ceremony = parseRecord(AuthenticationCeremony, await deps.ephemeral.take(authenticationKey(flow.flowId)));
      const credential = candidates.find((c) => c.externalId === assertion?.id);
      if (!ceremony || !assertion || !credential) return undefined;
      const stored = data(credential);
      // The guarded column (migration 013) is the record; the copy in public data may lag behind it.
      const known = Math.max(Number(stored.counter) || 0, credential.signCount);
      const markCloned = () =>
        deps.credentials.recordUse(credential, { ...stored, counter: known, cloneSuspectedAt: deps.clock.now() } as unknown as Record<string, unknown>);
      const handle = assertion.response?.userHandle;
      if (handle && Buffer.from(handle, 'base64url').toString('utf8') !== credential.userId) return undefined;
      let result;
      try {
        result = await verifyAuthenticationResponse({
          response: assertion,
          expectedChallenge: ceremony.challenge,
          expectedOrigin: rp.origins,
          expectedRPID: rp.id,
          credential: {
            id: credential.externalId!,
            publicKey: Buffer.from(stored.publicKey, 'base64url'),
            counter: known,
            transports: stored.transports,
          },
          requireUserVerification: flow.requireUserVerification ?? false,
        });
      } catch (err) {
        // A signature counter that did not move forward means two authenticators share this key: refuse,
        // and mark the credential for the user and admin. But the library compares the counter before it
        // checks the signature, and anyone can send a low counter with the (public) credential id: only an
        // assertion the key really signed may mark it.
        if (
          /counter value/i.test((err as Error).message) &&
          (await signedByKey(assertion, ceremony.challenge, credential, stored, flow.requireUserVerification ?? false, rp))
        ) {
          await markCloned();
        }
        return undefined;
      }
      if (!result.verified) return undefined;
      const info = result.authenticationInfo;
      const used = { ...stored, backedUp: info.credentialBackedUp } as unknown as Record<string, unknown>;
      if (info.newCounter > 0) {
        // A counter moves on once, cluster-wide: during an outage the high-water mark in Redis (a node's
        // snapshot does not see another node's sign-ins), then the guarded update of the record. An assertion
        // the key really signed whose counter another sign-in already reached comes from a second authenticator.
        const fresh =
          (await deps.credentials.holds.advance(`webauthn-counter:${credential.id}`, info.newCounter, COUNTER_HOLD_MS)) &&
          (await deps.credentials.advanceSignCount(credential, info.newCounter, used));
        if (!fresh) {
          await markCloned();
          return undefined;
        }
      } else {
        // An authenticator without a counter (many synced passkeys send 0 always): nothing to compare.
        await deps.credentials.recordUse(credential, { ...used, counter: 0 });
      }
      // RFC 8176: a synced passkey is a software-protected key, a device-bound one hardware.
      const amr = [info.credentialDeviceType === 'multiDevice' ? 'swk' : 'hwk', ...(info.userVerified ? ['user'] : [])];
      return { credential, amr };
    },
  };
}
