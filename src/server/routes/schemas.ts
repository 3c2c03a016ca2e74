import { Type } from '@fastify/type-provider-typebox';

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
});

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
