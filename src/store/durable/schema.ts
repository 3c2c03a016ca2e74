/**
 * The durable schema, shared by SQLite and PostgreSQL. Times are epoch
 * milliseconds (integers on both engines), booleans are 0/1, structured values
 * are JSON text: one representation the two engines agree on exactly.
 */
export interface TenantTable {
  id: string;
  slug: string;
  name: string;
  policy: string;
  created_at: number;
}

export interface UserTable {
  id: string;
  tenant_id: string;
  username: string;
  email: string | null;
  phone: string | null;
  password_hash: string | null;
  status: 'active' | 'disabled';
  must_register: number;
  flagged_at: number | null;
  created_at: number;
  updated_at: number;
  is_admin: number;
  /** An emergency account: every sign-in raises an alert. */
  break_glass: number;
  /** Email and phone sealed with the key ring; the plain columns are emptied once these are written. */
  email_sealed: string | null;
  phone_sealed: string | null;
  /** Keyed hash of the lower-cased email, to find a user by exact address without storing it in clear. */
  email_index: string | null;
  known_browsers_reset_at: number | null;
  /** When an admin API token last created, changed, reset or gave a pass to this account: it is never made an administrator. */
  token_touched_at: number | null;
  /** When the password was last set (a rehash with new parameters is not a change); null if unknown or none. */
  password_changed_at: number | null;
  /** When an administrator last reset the methods: a password set before then registers no first method. */
  methods_reset_at: number | null;
}

export interface CredentialTable {
  id: string;
  tenant_id: string;
  user_id: string;
  type: string;
  label: string;
  state: 'pending' | 'active';
  secret: string | null;
  public_data: string;
  /** The id the authenticator knows the credential by (WebAuthn); unique per tenant. */
  external_id: string | null;
  is_default: number;
  last_step: number | null;
  created_at: number;
  last_used_at: number | null;
  /** A WebAuthn credential's signature counter, only ever moved up (migration 013); 0 for other methods. */
  sign_count: number;
}

export interface RecoveryCodeTable {
  id: string;
  tenant_id: string;
  credential_id: string;
  lookup: string;
  code_hash: string;
  used_at: number | null;
}

export interface SessionTable {
  id: string;
  tenant_id: string;
  user_id: string;
  token_hash: string;
  scope: 'full' | 'register';
  amr: string;
  auth_time: number;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
  revoked_at: number | null;
  ip: string | null;
  user_agent: string | null;
}

export interface AdminTokenTable {
  id: string;
  tenant_id: string;
  token_hash: string;
  role: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  expires_at: number | null;
  name: string | null;
  created_by: string | null;
}

/** An account an admin API token touched (created, changed, reset, gave a pass), and when first: what its revocation takes back. */
export interface TokenTouchTable {
  tenant_id: string;
  token_id: string;
  user_id: string;
  first_at: number;
}

export interface SigninEventTable {
  id: string;
  tenant_id: string;
  user_id: string | null;
  username: string;
  at: number;
  ip: string | null;
  user_agent: string | null;
  app: string | null;
  step: string;
  outcome: 'success' | 'failure';
  reason: string;
  method: string | null;
  node: string;
  degraded: number;
  reported_at: number | null;
  /** The method (credential) the step used, when it was one of the user's: a report takes it back. */
  credential_id: string | null;
}

export interface AccessPassTable {
  id: string;
  tenant_id: string;
  user_id: string;
  code_hash: string;
  one_time: number;
  created_at: number;
  expires_at: number;
  created_by: string;
  uses: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AuditLogTable {
  id: string;
  tenant_id: string;
  seq: number;
  at: number;
  actor: string;
  action: string;
  target_user_id: string | null;
  details: string;
  prev_hash: string;
  /** HMAC-SHA256 under the audit key derived from master key `key_id`; plain SHA-256 when `key_id` is null (entries from before the chain was keyed). */
  hash: string;
  key_id: string | null;
}

export interface AuditHeadTable {
  tenant_id: string;
  seq: number;
  hash: string;
  key_id: string | null;
}

/** Where retention cut a tenant's chain: entries up to `seq` are gone, `hash` was entry `seq`'s hash. Signed with `mac`. */
export interface AuditCheckpointTable {
  tenant_id: string;
  seq: number;
  hash: string;
  /** 1 when the chain was already keyed at the cut: unkeyed entries after it would be a downgrade. */
  keyed: number;
  at: number;
  key_id: string;
  mac: string;
}

export interface AppTable {
  id: string;
  tenant_id: string;
  name: string;
  kind: 'oidc' | 'api';
  client_id: string | null;
  secret_hash: string | null;
  redirect_uris: string;
  settings: string;
  created_at: number;
  revoked_at: number | null;
}

export interface RememberedDeviceTable {
  id: string;
  tenant_id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  revoked_at: number | null;
  user_agent: string | null;
}

export interface OidcRecordTable {
  tenant_id: string;
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: number | null;
  consumed_at: number | null;
  /** The user the record was issued to (sessions, grants, tokens), to end them all at once. */
  account_id: string | null;
}

export interface OidcKeyTable {
  tenant_id: string;
  kid: string;
  sealed_jwk: string;
  created_at: number;
  retired_at: number | null;
}

export interface Database {
  tenants: TenantTable;
  users: UserTable;
  credentials: CredentialTable;
  recovery_codes: RecoveryCodeTable;
  sessions: SessionTable;
  admin_tokens: AdminTokenTable;
  token_touches: TokenTouchTable;
  signin_events: SigninEventTable;
  access_passes: AccessPassTable;
  audit_log: AuditLogTable;
  audit_heads: AuditHeadTable;
  audit_checkpoints: AuditCheckpointTable;
  apps: AppTable;
  remembered_devices: RememberedDeviceTable;
  oidc_records: OidcRecordTable;
  oidc_keys: OidcKeyTable;
  cluster_members: ClusterMemberTable;
  cluster_load: ClusterLoadTable;
  ephemeral_fallback: EphemeralFallbackTable;
  outage_replays: OutageReplayTable;
  change_feed: ChangeFeedTable;
  config_versions: ConfigVersionTable;
  incidents: IncidentTable;
  deployment_keys: DeploymentKeyTable;
  canary_tallies: CanaryTallyTable;
}

export interface ClusterMemberTable {
  name: string;
  /** The member record as JSON (see cluster/membership.ts). */
  record: string;
  last_seen: number;
}

export interface ClusterLoadTable {
  bucket_start: number;
  checks: number;
}

/** Ephemeral entries kept durably while Redis is away (store/ephemeral/durable-ephemeral-store.ts). */
export interface EphemeralFallbackTable {
  key: string;
  /** The value as JSON. */
  value: string;
  expires_at: number;
}

/** Journal entries of a node's outage fallback already replayed into the database (idempotent replay). */
export interface OutageReplayTable {
  id: string;
  node: string;
  replayed_at: number;
}

/** PostgreSQL only: one row per change to a table the fallback copies, written by a trigger. */
export interface ChangeFeedTable {
  seq: number;
  tbl: string;
  row_id: string;
  at: number;
}

export interface ConfigVersionTable {
  /** `node` (every node's runtime settings) or `tenant:{id}` (a tenant's policy). */
  scope: string;
  version: number;
  /** The document as applied, JSON, secrets sealed with the key ring. */
  document: string;
  /** JSON list of changes against the version it replaced, secrets shown as changed, never their values. */
  diff: string;
  actor: string;
  created_at: number;
  state: 'canary' | 'promoted' | 'rolled-back' | 'superseded';
  canary_percent: number;
  bake_seconds: number;
  decided_at: number | null;
  reason: string | null;
}

export interface IncidentTable {
  id: string;
  /** Empty for incidents every tenant sees. */
  tenant_id: string;
  component: string;
  title: string;
  /** What users should do meanwhile. */
  advice: string;
  source: 'auto' | 'admin';
  started_at: number;
  expected_end_at: number | null;
  ended_at: number | null;
  /** JSON list of {at, text}. */
  updates: string;
  updated_at: number;
}

export interface DeploymentKeyTable {
  name: string;
  public_key: string;
  /** Sealed with the key ring, bound to the row's name. */
  sealed_private_key: string;
  created_at: number;
}

export interface CanaryTallyTable {
  /** The configuration scope (`node`, `tenant:{id}`) and the canary version. */
  scope: string;
  version: number;
  /** The node instance that counted (config/slice-tally.ts). */
  node: string;
  /** Its counts since the canary began, as JSON. */
  record: string;
  updated_at: number;
}
