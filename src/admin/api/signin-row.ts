import { Type } from '@fastify/type-provider-typebox';
import { Nullable, SigninEventView, signinEventView } from '../../http/api-schemas.ts';
import type { AdminSigninEvent } from '../../activity/signin-events.ts';

/** A sign-in event as an administrator sees it: with the user it was for. */
export const SigninRow = Type.Object({ ...SigninEventView.properties, userId: Nullable(Type.String()), username: Type.String() });
export const signinRow = (e: AdminSigninEvent) => ({ ...signinEventView(e), userId: e.userId, username: e.username });
