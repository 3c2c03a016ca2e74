import type { Adapter, AdapterPayload } from 'oidc-provider';
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

/** Builds the adapter oidc-provider asks for, one per model, scoped to one tenant. */
export function storageAdapterFor(deps: { db: Db; ephemeral: EphemeralStore; clock: Clock; apps: Apps }, tenantId: string): new (model: string) => Adapter {
  return class StorageAdapter implements Adapter {
    private readonly inner: Adapter;

    constructor(readonly model: string) {
      this.inner =
        model === 'Client'
          ? new ClientAdapter(deps.apps, tenantId)
          : EPHEMERAL_MODELS.has(model)
            ? new EphemeralAdapter(deps.ephemeral, tenantId, model)
            : new DurableAdapter(deps.db, deps.clock, tenantId, model);
    }

    upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      return this.inner.upsert(id, payload, expiresIn);
    }
    find(id: string) {
      return this.inner.find(id);
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

  async consume(id: string): Promise<void> {
    await this.db
      .updateTable('oidc_records')
      .set({ consumed_at: this.clock.now() })
      .where('tenant_id', '=', this.tenantId)
      .where('model', '=', this.model)
      .where('id', '=', id)
      .execute();
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

  async consume(id: string): Promise<void> {
    const record = await this.record(id);
    if (!record) return;
    const ttlMs = typeof record.payload.exp === 'number' ? Math.max(1000, record.payload.exp * 1000 - Date.now()) : 60_000;
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
