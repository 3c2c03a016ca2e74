/** Apps of a tenant: OIDC clients (secrets sealed) and REST API keys (stored as hashes). */
import type { Db } from '../store/durable/database.ts';
import type { AppTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import { hashToken } from '../crypto/keyed-hash.ts';
import { newId, randomToken } from '../crypto/random.ts';
import { AppError } from '../errors/app-error.ts';
import { parseJson } from '../store/parse-record.ts';
import { Type, type Static } from 'typebox';

/** An application that signs its users in with Steadfast: over OpenID Connect, or the REST app API. */
export interface AppRecord {
  id: string;
  tenantId: string;
  name: string;
  kind: 'oidc' | 'api';
  /** OIDC only. */
  clientId: string | null;
  redirectUris: string[];
  /** OIDC: a first-party app skips the consent page. */
  firstParty: boolean;
  /** OIDC: a public client (single-page or mobile app) has no secret and must use PKCE. */
  public: boolean;
  createdAt: number;
}

export interface NewApp {
  name: string;
  kind: 'oidc' | 'api';
  redirectUris?: string[] | undefined;
  firstParty?: boolean | undefined;
  public?: boolean | undefined;
}

const SettingsColumn = Type.Object({
  firstParty: Type.Boolean(),
  public: Type.Boolean(),
  /** OIDC client secret, sealed: the provider must compare it, so a one-way hash will not do. */
  sealedSecret: Type.Optional(Type.String()),
});
type Settings = Static<typeof SettingsColumn>;
/** Unreadable settings read as the least trusting app: third party (consent asked), confidential, no secret (so it cannot authenticate). */
const settingsOf = (row: Pick<AppTable, 'settings'>): Settings => parseJson(SettingsColumn, row.settings) ?? { firstParty: false, public: false };
const RedirectUrisColumn = Type.Array(Type.String());

/** What an app's client secret is sealed to. */
export const appSecretContext = (appId: string) => `app-secret:${appId}`;

/** The sealed client secret in an app's stored settings, if it has one (damaged settings: none). */
export const sealedAppSecret = (settings: string): string | undefined => parseJson(SettingsColumn, settings)?.sealedSecret;

/** Stored settings with the client secret sealed anew (a master-key rotation). */
export const withSealedAppSecret = (settings: string, sealedSecret: string): string => JSON.stringify({ ...parseJson(SettingsColumn, settings), sealedSecret });

/** App records of a tenant. Secrets are shown once: API keys kept as SHA-256, client secrets sealed. */
export class Apps {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly keyRing: KeyRing,
  ) {}

  async create(tenantId: string, input: NewApp): Promise<{ app: AppRecord; clientSecret?: string; apiKey?: string }> {
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200) throw new AppError('invalid-request', 'an app name is 1 to 200 characters');
    const redirectUris = input.kind === 'oidc' ? checkRedirectUris(input.redirectUris ?? []) : [];
    const id = newId();
    const settings: Settings = { firstParty: input.firstParty ?? false, public: input.kind === 'oidc' && (input.public ?? false) };
    let clientSecret: string | undefined;
    let apiKey: string | undefined;
    let secretHash: string | null = null;
    if (input.kind === 'api') {
      apiKey = `sfk_${randomToken(32)}`;
      secretHash = hashToken(apiKey);
    } else if (!settings.public) {
      clientSecret = randomToken(32);
      settings.sealedSecret = this.keyRing.seal(clientSecret, appSecretContext(id));
    }
    const row: AppTable = {
      id,
      tenant_id: tenantId,
      name,
      kind: input.kind,
      client_id: input.kind === 'oidc' ? `sfc_${randomToken(16)}` : null,
      secret_hash: secretHash,
      redirect_uris: JSON.stringify(redirectUris),
      settings: JSON.stringify(settings),
      created_at: this.clock.now(),
      revoked_at: null,
    };
    await this.db.insertInto('apps').values(row).execute();
    return { app: toApp(row), ...(clientSecret ? { clientSecret } : {}), ...(apiKey ? { apiKey } : {}) };
  }

  async list(tenantId: string): Promise<AppRecord[]> {
    const rows = await this.db.selectFrom('apps').selectAll().where('tenant_id', '=', tenantId).where('revoked_at', 'is', null).orderBy('created_at').execute();
    return rows.map(toApp);
  }

  async get(tenantId: string, id: string): Promise<AppRecord | undefined> {
    const row = await this.db
      .selectFrom('apps')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row && toApp(row);
  }

  async revoke(tenantId: string, id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('apps')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The API app an `sfk_` key belongs to, if it is still valid. */
  async authenticateApiKey(key: string): Promise<AppRecord | undefined> {
    if (!key.startsWith('sfk_') || key.length > 100) return undefined;
    const row = await this.db
      .selectFrom('apps')
      .selectAll()
      .where('secret_hash', '=', hashToken(key))
      .where('kind', '=', 'api')
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row && toApp(row);
  }

  /** An OIDC app by client id, with its secret opened (for the OIDC provider's client lookup). */
  async findClient(clientId: string): Promise<{ app: AppRecord; clientSecret: string | null } | undefined> {
    const row = await this.db.selectFrom('apps').selectAll().where('client_id', '=', clientId).where('revoked_at', 'is', null).executeTakeFirst();
    if (!row) return undefined;
    const settings = settingsOf(row);
    return {
      app: toApp(row),
      clientSecret: settings.sealedSecret ? this.keyRing.open(settings.sealedSecret, appSecretContext(row.id)).toString('utf8') : null,
    };
  }
}

function checkRedirectUris(uris: string[]): string[] {
  if (uris.length === 0 || uris.length > 20) throw new AppError('invalid-request', 'an OIDC app needs 1 to 20 redirectUris');
  for (const uri of uris) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new AppError('invalid-request', `redirect URI "${uri.slice(0, 100)}" is not a URL`);
    }
    // RFC 8252 / OAuth 2.1: https, or http only on loopback (native apps); never fragments.
    const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
    if (url.hash || (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback) && !/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol))) {
      throw new AppError(
        'invalid-request',
        `redirect URI "${uri.slice(0, 100)}" must be https (http only on localhost), or a private-use scheme, without a fragment`,
      );
    }
  }
  return [...new Set(uris)];
}

function toApp(row: AppTable): AppRecord {
  const settings = settingsOf(row);
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    kind: row.kind,
    clientId: row.client_id,
    redirectUris: parseJson(RedirectUrisColumn, row.redirect_uris) ?? [],
    firstParty: settings.firstParty,
    public: settings.public,
    createdAt: Number(row.created_at),
  };
}
