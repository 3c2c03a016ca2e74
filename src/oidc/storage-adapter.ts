import type { Adapter, AdapterPayload, errors as OidcErrors } from 'oidc-provider';
import type { Db } from '../store/durable/database.ts';
import type { Clock } from '../clock.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { Apps } from '../directory/apps.ts';
import { Type } from 'typebox';
import { parseRecord } from '../store/parse-record.ts';

/**
 * Short-lived records live in the ephemeral store (Redis in a cluster), the
 * rest in the durable store, so a flow started on one node finishes on any
 * other and a restart signs nobody out of their apps.
 */
const EPHEMERAL_MODELS = new Set(['Interaction', 'AuthorizationCode', 'ReplayDetection', 'PushedAuthorizationRequest']);

// The library's error classes; it is loaded lazily (see provider-registry.ts), so they are handed in.
export type OidcErrorClasses = Pick<typeof OidcErrors, 'InvalidGrant' | 'InvalidRequestUri'>;

// What a lost race to consume a single-use record does. oidc-provider decides
// "already used?" on the record it read before consuming it; two requests that
// read it at the same moment both see it unused. So `consume` claims the record
// in one atomic step, and the request that loses is treated as the replay it is:
// for a code or a refresh token the grant is revoked (every token it gave, the
// winner's included) and the answer is invalid_grant, as the library does for a
// replay it sees; a pushed request used twice is an invalid request_uri.
function lostConsumeRace(errors: OidcErrorClasses, revokeGrant: (grantId: string) => Promise<void>) {
  return async (model: string, grantId: unknown): Promise<never> => {
    if (model === 'PushedAuthorizationRequest') throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
    if (typeof grantId === 'string') await revokeGrant(grantId);
    const label = model === 'AuthorizationCode' ? 'authorization code' : model === 'RefreshToken' ? 'refresh token' : model;
    throw new errors.InvalidGrant(`${label} already consumed`);
  };
}

type LostConsumeRace = ReturnType<typeof lostConsumeRace>;

/** The Steadfast session a code is issued on (provider-registry.ts's SteadfastSessionRef, as far as codes need it). */
type CodeSession = { id: string; userId: string };

// Where a stored code keeps the id of the Steadfast session it was issued on (taken out before the provider sees it).
const CODE_SESSION = 'urn:steadfast:session';

/** Builds the adapter oidc-provider asks for, one per model, scoped to one tenant. */
export function storageAdapterFor(
  deps: {
    db: Db;
    ephemeral: EphemeralStore;
    clock: Clock;
    apps: Apps;
    linkGrant(tenantId: string, grantId: string, steadfast: CodeSession): Promise<void>;
    sessionLive(tenantId: string, sessionId: string, userId: string): Promise<boolean>;
    mfaRequired(tenantId: string): Promise<boolean>;
  },
  tenantId: string,
  errors: OidcErrorClasses,
  /** The Steadfast session the current authorization request stands on (found by the provider's policy check). */
  requestStandsOn: () => CodeSession | undefined,
): new (model: string) => Adapter {
  // A grant's durable records (its tokens, and the grant itself); its codes in the ephemeral store die with it,
  // since redeeming one loads the grant.
  const revokeGrant = async (grantId: string) => {
    await deps.db
      .deleteFrom('oidc_records')
      .where('tenant_id', '=', tenantId)
      .where((eb) => eb.or([eb('grant_id', '=', grantId), eb.and([eb('model', '=', 'Grant'), eb('id', '=', grantId)])]))
      .execute();
  };
  const lost = lostConsumeRace(errors, revokeGrant);
  return class StorageAdapter implements Adapter {
    private readonly inner: Adapter;

    constructor(readonly model: string) {
      this.inner =
        model === 'Client'
          ? new ClientAdapter(deps.apps, tenantId)
          : EPHEMERAL_MODELS.has(model)
            ? new EphemeralAdapter(deps.ephemeral, tenantId, model, lost)
            : new DurableAdapter(deps.db, deps.clock, tenantId, model, lost);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      if (this.model !== 'AuthorizationCode') return this.inner.upsert(id, payload, expiresIn);
      // A code is issued on the strength of one Steadfast session, the one its request stands on: the code
      // carries it, and its grant is linked to it (before the code exists, so a sign-out that misses the link
      // is one the code's redemption sees).
      const steadfast = requestStandsOn();
      if (steadfast && typeof payload.grantId === 'string') await deps.linkGrant(tenantId, payload.grantId, steadfast);
      return this.inner.upsert(id, steadfast ? { ...payload, [CODE_SESSION]: steadfast.id } : payload, expiresIn);
    }
    async find(id: string) {
      const found = await this.inner.find(id);
      if (found && this.model === 'RefreshToken') return this.asPolicyStands(found);
      if (!found || this.model !== 'AuthorizationCode') return found;
      // A code is good only while the Steadfast session it was issued on is (that session, not whichever the
      // browser holds now). Ending the session ends the grants used in it, but an authorization request that
      // found it live just before may save its code after that sweep: checked when the code is used, no order
      // of writes gets past it. The grant goes too.
      const { [CODE_SESSION]: sessionId, ...code } = found;
      const live = typeof sessionId === 'string' && typeof code.accountId === 'string' && (await deps.sessionLive(tenantId, sessionId, code.accountId));
      if (live) return this.asPolicyStands(code);
      if (typeof code.grantId === 'string') await revokeGrant(code.grantId);
      return undefined;
    }
    /**
     * A code or refresh token made of a sign-in without a second factor is good only while the tenant does not
     * require one: the policy as it stands now, not as it stood at the sign-in. An app that kept refreshing
     * would otherwise get password-only ID tokens and access for as long as the grant lives, after the tenant
     * came to require MFA (the provider never asks the sign-in page again on a refresh), and a code issued
     * just before the change would still be redeemed. The grant goes too.
     */
    private async asPolicyStands(token: AdapterPayload): Promise<AdapterPayload | undefined> {
      if (Array.isArray(token.amr) && token.amr.includes('mfa')) return token;
      if (!(await deps.mfaRequired(tenantId))) return token;
      if (typeof token.grantId === 'string') await revokeGrant(token.grantId);
      return undefined;
    }
    findByUserCode(userCode: string) {
      return this.inner.findByUserCode(userCode);
    }
    findByUid(uid: string) {
      return this.inner.findByUid(uid);
    }
    consume(id: string) {
      return this.inner.consume(id);
    }
    destroy(id: string) {
      return this.inner.destroy(id);
    }
    revokeByGrantId(grantId: string) {
      return this.inner.revokeByGrantId(grantId);
    }
  };
}

class DurableAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly tenantId: string,
    private readonly model: string,
    private readonly lost: LostConsumeRace,
  ) {}

  private where() {
    return this.db.selectFrom('oidc_records').selectAll().where('tenant_id', '=', this.tenantId).where('model', '=', this.model);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const row = {
      tenant_id: this.tenantId,
      model: this.model,
      id,
      payload: JSON.stringify(payload),
      grant_id: payload.grantId ?? null,
      uid: payload.uid ?? null,
      user_code: payload.userCode ?? null,
      expires_at: expiresIn ? this.clock.now() + expiresIn * 1000 : null,
      consumed_at: null,
      account_id: typeof payload.accountId === 'string' ? payload.accountId : null,
    };
    await this.db
      .insertInto('oidc_records')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'model', 'id']).doUpdateSet({
          payload: row.payload,
          grant_id: row.grant_id,
          uid: row.uid,
          user_code: row.user_code,
          expires_at: row.expires_at,
          account_id: row.account_id,
        }),
      )
      .execute();
  }

  private async one(query: ReturnType<DurableAdapter['where']>): Promise<AdapterPayload | undefined> {
    const row = await query.executeTakeFirst();
    if (!row || (row.expires_at !== null && Number(row.expires_at) <= this.clock.now())) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    return row.consumed_at !== null ? { ...payload, consumed: Math.floor(Number(row.consumed_at) / 1000) } : payload;
  }

  find(id: string) {
    return this.one(this.where().where('id', '=', id));
  }
  findByUid(uid: string) {
    return this.one(this.where().where('uid', '=', uid));
  }
  findByUserCode(userCode: string) {
    return this.one(this.where().where('user_code', '=', userCode));
  }

  /** Marks the record used in one statement that only an unused record passes: of racing callers exactly one does. */
  async consume(id: string): Promise<void> {
    const result = await this.db
      .updateTable('oidc_records')
      .set({ consumed_at: this.clock.now() })
      .where('tenant_id', '=', this.tenantId)
      .where('model', '=', this.model)
      .where('id', '=', id)
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) return;
    // Used meanwhile (or revoked meanwhile, which leaves nothing to read a grant from).
    const row = await this.db
      .selectFrom('oidc_records')
      .select('grant_id')
      .where('tenant_id', '=', this.tenantId)
      .where('model', '=', this.model)
      .where('id', '=', id)
      .executeTakeFirst();
    await this.lost(this.model, row?.grant_id);
  }

  async destroy(id: string): Promise<void> {
    await this.db.deleteFrom('oidc_records').where('tenant_id', '=', this.tenantId).where('model', '=', this.model).where('id', '=', id).execute();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db.deleteFrom('oidc_records').where('tenant_id', '=', this.tenantId).where('grant_id', '=', grantId).execute();
  }
}

/** oidc-provider owns the payload's shape; the envelope is ours. */
const EphemeralRecord = Type.Object({ payload: Type.Record(Type.String(), Type.Unknown()), consumed: Type.Optional(Type.Number()) });
type EphemeralRecord = { payload: AdapterPayload; consumed?: number };

class EphemeralAdapter implements Adapter {
  constructor(
    private readonly store: EphemeralStore,
    private readonly tenantId: string,
    private readonly model: string,
    private readonly lost: LostConsumeRace,
  ) {}

  private key(id: string) {
    return `oidc:${this.tenantId}:${this.model}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    await this.store.set(this.key(id), { payload } satisfies EphemeralRecord, Math.max(1, expiresIn) * 1000);
    // Codes of a grant are revoked with it (a code used twice revokes everything it gave).
    if (payload.grantId)
      await this.store.set(`oidc:${this.tenantId}:grant:${payload.grantId}:${this.model}:${id}`, this.key(id), Math.max(1, expiresIn) * 1000);
  }

  private async record(id: string): Promise<EphemeralRecord | undefined> {
    return parseRecord(EphemeralRecord, await this.store.get(this.key(id))) as EphemeralRecord | undefined;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const record = await this.record(id);
    if (!record) return undefined;
    return record.consumed ? { ...record.payload, consumed: record.consumed } : record.payload;
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  /**
   * Claims the record with an atomic set-if-absent of a consumed mark (of racing callers exactly one
   * stores it), then marks the record itself so that a later find sees it used.
   */
  async consume(id: string): Promise<void> {
    const record = await this.record(id);
    const ttlMs = typeof record?.payload.exp === 'number' ? Math.max(1000, record.payload.exp * 1000 - Date.now()) : 60_000;
    if (!record || !(await this.store.setIfAbsent(`${this.key(id)}:consumed`, 1, ttlMs))) return this.lost(this.model, record?.payload.grantId);
    await this.store.set(this.key(id), { ...record, consumed: Math.floor(Date.now() / 1000) }, ttlMs);
  }

  async destroy(id: string): Promise<void> {
    await this.store.delete(this.key(id));
  }

  async revokeByGrantId(): Promise<void> {
    // Authorization codes live a minute and are single-use; the durable records of the grant are revoked by the durable adapter.
  }
}

/** Clients are the tenant's OIDC app records; the provider never writes them. */
class ClientAdapter implements Adapter {
  constructor(
    private readonly apps: Apps,
    private readonly tenantId: string,
  ) {}

  async find(clientId: string): Promise<AdapterPayload | undefined> {
    const found = await this.apps.findClient(clientId);
    if (!found || found.app.tenantId !== this.tenantId) return undefined;
    const { app, clientSecret } = found;
    return {
      client_id: clientId,
      client_name: app.name,
      ...(clientSecret ? { client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_basic' } : { token_endpoint_auth_method: 'none' }),
      redirect_uris: app.redirectUris,
      // The app's own pages may receive the user after sign-out: its redirect URIs and their web origins.
      post_logout_redirect_uris: [...new Set([...app.redirectUris, ...app.redirectUris.filter((u) => /^https?:/.test(u)).map((u) => `${new URL(u).origin}/`)])],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(app.public ? { application_type: 'native' } : {}),
      'urn:steadfast:first_party': app.firstParty,
    } as AdapterPayload;
  }

  async upsert(): Promise<void> {}
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async consume(): Promise<void> {}
  async destroy(): Promise<void> {}
  async revokeByGrantId(): Promise<void> {}
}
