import type { Migration } from 'kysely';
import * as initial from './001-initial.ts';
import * as credentialExternalId from './002-credential-external-id.ts';
import * as administration from './003-administration.ts';
import * as rememberedDevices from './004-remembered-devices.ts';
import * as oidc from './005-oidc.ts';
import * as retentionAndKeyedAudit from './006-retention-and-keyed-audit.ts';
import * as securityReview from './007-security-review.ts';
import * as cluster from './008-cluster.ts';
import * as ephemeralFallback from './009-ephemeral-fallback.ts';
import * as configVersions from './010-config-versions.ts';
import * as push from './011-push.ts';
import * as canaryTallies from './012-canary-tallies.ts';
import * as signatureCounter from './013-signature-counter.ts';
import * as tokenTouched from './014-token-touched.ts';
import * as tokenTouches from './015-token-touches.ts';
import * as methodsResetAt from './016-methods-reset-at.ts';
import * as signinCredential from './017-signin-credential.ts';

/**
 * Every migration, in order. Listed here rather than discovered on disk, so a
 * bundled or relocated install runs exactly the migrations it was built with.
 */
export const migrations: Record<string, Migration> = {
  '001-initial': initial,
  '002-credential-external-id': credentialExternalId,
  '003-administration': administration,
  '004-remembered-devices': rememberedDevices,
  '005-oidc': oidc,
  '006-retention-and-keyed-audit': retentionAndKeyedAudit,
  '007-security-review': securityReview,
  '008-cluster': cluster,
  '009-ephemeral-fallback': ephemeralFallback,
  '010-config-versions': configVersions,
  '011-push': push,
  '012-canary-tallies': canaryTallies,
  '013-signature-counter': signatureCounter,
  '014-token-touched': tokenTouched,
  '015-token-touches': tokenTouches,
  '016-methods-reset-at': methodsResetAt,
  '017-signin-credential': signinCredential,
};
