import type { TSchema } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { AdmissionClass } from '../../admission/admission-class.ts';

/**
 * What every page form post shares: its schemas (hidden from the API document),
 * the CSRF check, and its admission class (and `hashes` when every post runs
 * an Argon2id hash, so the hashing pool can refuse it at the door).
 */
export function formRoute<P extends TSchema, B extends TSchema>(
  app: FastifyInstance,
  admissionClass: AdmissionClass,
  params: P,
  body: B,
  admission: { hashes?: boolean; duringOutage?: boolean } = {},
) {
  return { schema: { params, body, hide: true }, preHandler: app.csrfProtection, config: { admissionClass, ...admission } };
}
