import { Type } from '@fastify/type-provider-typebox';
import type { User } from '../directory/users.ts';
import { isoTime, Nullable } from '../server/routes/schemas.ts';


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

export const userView = (u: User) => ({
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

