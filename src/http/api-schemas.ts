/**
 * The JSON shapes the REST API shares between its route modules (portal,
 * admin, the composition root's API routes) and `steadfast/client`, which
 * takes its types from them (`Static`), so the client cannot drift from the
 * server. Only shapes and their mapping from domain records live here.
 */
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import type { SigninEvent } from '../activity/signin-events.ts';
import type { User } from '../directory/users.ts';

export const TenantParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
export const FlowParams = Type.Object({
  tenant: Type.String({ minLength: 1, maxLength: 64 }),
  flow: Type.String({ minLength: 1, maxLength: 64 }),
});
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const MethodChoice = Type.Object({
  id: Type.String(),
  type: Type.String(),
  label: Type.String(),
  available: Type.Boolean(),
  default: Type.Boolean(),
});

export const IssuedSession = Type.Object({ token: Type.String(), expiresAt: Type.String({ format: 'date-time' }) });

export const MethodView = Type.Object({
  id: Type.String(),
  type: Type.String(),
  label: Type.String(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('active')]),
  default: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  remaining: Type.Optional(Type.Integer()),
  to: Type.Optional(Type.String({ description: 'sms, voice, email: the destination, masked' })),
  signsInAlone: Type.Optional(Type.Boolean({ description: 'a passkey: signs in on its own, no password needed' })),
});

/** The browser's WebAuthn authentication response (AuthenticationResponseJSON); SimpleWebAuthn checks the rest. */
export const WebAuthnAssertion = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 1024 }),
    rawId: Type.String({ maxLength: 1024 }),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: Type.String({ maxLength: 4096 }),
        authenticatorData: Type.String({ maxLength: 4096 }),
        signature: Type.String({ maxLength: 1024 }),
        userHandle: Type.Optional(Type.String({ maxLength: 512 })),
      },
      { additionalProperties: true },
    ),
    clientExtensionResults: Type.Optional(Type.Object({}, { additionalProperties: true })),
    authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: true },
);

/** The browser's WebAuthn registration response (RegistrationResponseJSON). */
export const WebAuthnAttestation = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 1024 }),
    rawId: Type.String({ maxLength: 1024 }),
    type: Type.Literal('public-key'),
    response: Type.Object(
      {
        clientDataJSON: Type.String({ maxLength: 4096 }),
        attestationObject: Type.String({ maxLength: 65536 }),
        transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 })),
      },
      { additionalProperties: true },
    ),
    clientExtensionResults: Type.Optional(Type.Object({}, { additionalProperties: true })),
    authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: true },
);

/** Where a code went: the channel and the masked destination, never the destination itself. */
export const DeliveryInfo = Type.Object({
  channel: Type.Union([Type.Literal('sms'), Type.Literal('voice'), Type.Literal('email')]),
  to: Type.String({ description: 'masked, e.g. +•••••••••67 or j•••@e•••.com' }),
  expiresAt: Type.String({ format: 'date-time' }),
  resendAfterSeconds: Type.Integer(),
});

/** A push request waiting on the user's device: the number to show (the person types it in the app). */
export const PushInfo = Type.Object({
  number: Type.String({ pattern: '^[0-9]{2}$', description: 'two digits to show on the sign-in page' }),
  expiresAt: Type.String({ format: 'date-time' }),
});

/** A schema that also allows null. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Epoch milliseconds as an ISO 8601 date-time, null kept. */
export function isoTime(ms: number): string;
export function isoTime(ms: number | null): string | null;
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** One sign-in attempt, as a user sees it in their activity and an admin in the log. */
export const SigninEventView = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  app: Nullable(Type.String()),
  step: Type.String(),
  method: Nullable(Type.String()),
  outcome: Type.String(),
  reason: Type.String(),
  reported: Type.Boolean(),
});

export const signinEventView = (e: SigninEvent) => ({
  id: e.id,
  at: isoTime(e.at),
  ip: e.ip,
  userAgent: e.userAgent,
  app: e.app,
  step: e.step,
  method: e.method,
  outcome: e.outcome,
  reason: e.reason,
  reported: e.reportedAt !== null,
});

/** A user as the admin API and the command line show it. */
export const AdminUser = Type.Object({
  id: Type.String(),
  username: Type.String(),
  email: Nullable(Type.String()),
  phone: Nullable(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  admin: Type.Boolean(),
  breakGlass: Type.Boolean(),
  mustRegister: Type.Boolean(),
  flaggedAt: Nullable(Type.String({ format: 'date-time' })),
  createdAt: Type.String({ format: 'date-time' }),
});

export const adminUserView = (u: User) => ({
  id: u.id,
  username: u.username,
  email: u.email,
  phone: u.phone,
  status: u.status,
  admin: u.isAdmin,
  breakGlass: u.breakGlass,
  mustRegister: u.mustRegister,
  flaggedAt: isoTime(u.flaggedAt),
  createdAt: isoTime(u.createdAt),
});
