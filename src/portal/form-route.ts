import type { TSchema } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { AdmissionClass } from '../admission/admission-controller.ts';

/** What every page form post shares: its schemas (hidden from the API document), the CSRF check, and its admission class. */
export function formRoute<P extends TSchema, B extends TSchema>(app: FastifyInstance, admissionClass: AdmissionClass, params: P, body: B) {
  return { schema: { params, body, hide: true }, preHandler: app.csrfProtection, config: { admissionClass } };
}
