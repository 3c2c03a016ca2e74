/** Tenants in the durable store, with a short per-node cache (every request reads its tenant). */
import type { Tenant } from './tenant.ts';

export type { Tenant } from './tenant.ts';
import type { Db } from '../store/durable/database.ts';
import type { TenantTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../crypto/random.ts';
import { DEFAULT_POLICY, parsePolicy, type TenantPolicy } from './policy.ts';
import { SLUG_PATTERN } from './username.ts';

// Tenants are read on every request and change rarely: a node keeps them this
// long, so a policy change reaches every node within this time. Runtime
// configuration (`cache.tenantSeconds`) may change it.
const CACHE_MS = 5_000;

export class Tenants {
  // Keyed "slug:<slug>" and "id:<id>"; only tenants that exist are kept, so a
  // flood of made-up slugs cannot grow it.
  private readonly cache = new Map<string, { tenant: Tenant; until: number }>();
  private cacheMs = CACHE_MS;
  // How the current request sees a tenant: a tenant policy on a canary shows to the clients in its slice (config/runtime-config.ts).
  private view: (tenant: Tenant) => Tenant = (tenant) => tenant;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(slug: string, name?: string): Promise<Tenant> {
    if (!SLUG_PATTERN.test(slug)) {
      throw new AppError('invalid-request', 'a tenant slug is 1 to 64 lowercase letters, digits and inner hyphens');
    }
    const displayName = (name ?? slug).trim();
    if (displayName.length === 0 || displayName.length > 200) throw new AppError('invalid-request', 'a tenant name is 1 to 200 characters');
    const tenant: Tenant = { id: newId(), slug, name: displayName, policy: { ...DEFAULT_POLICY }, createdAt: this.clock.now() };
    const result = await this.db
      .insertInto('tenants')
      .values({ id: tenant.id, slug, name: displayName, policy: JSON.stringify(tenant.policy), created_at: tenant.createdAt })
      .onConflict((oc) => oc.column('slug').doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) throw new AppError('conflict', `tenant "${slug}" already exists`);
    return tenant;
  }

  findBySlug(slug: string): Promise<Tenant | undefined> {
    return this.cached(`slug:${slug}`, () => this.db.selectFrom('tenants').selectAll().where('slug', '=', slug).executeTakeFirst());
  }

  /** Every signed-in request resolves its session's tenant by id: cached like slugs. */
  findById(id: string): Promise<Tenant | undefined> {
    return this.cached(`id:${id}`, () => this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst());
  }

  /**
   * Stores a validated policy (through `db` when it is part of a transaction:
   * the policy version that records it). Other nodes pick it up within their
   * cache time (5 s).
   */
  async setPolicy(tenant: Tenant, policy: TenantPolicy, db: Db = this.db): Promise<Tenant> {
    await db
      .updateTable('tenants')
      .set({ policy: JSON.stringify(policy) })
      .where('id', '=', tenant.id)
      .execute();
    this.cache.delete(`slug:${tenant.slug}`);
    this.cache.delete(`id:${tenant.id}`);
    return { ...tenant, policy };
  }

  /** The policy as stored, never a canary's view of it (read from the store, no cache). */
  async storedPolicy(id: string): Promise<TenantPolicy | undefined> {
    const row = await this.db.selectFrom('tenants').select('policy').where('id', '=', id).executeTakeFirst();
    return row ? parsePolicy(row.policy) : undefined;
  }

  /** Sets how a request sees a tenant (the policy canary); one viewer per node. */
  useView(view: (tenant: Tenant) => Tenant): void {
    this.view = view;
  }

  setCacheMs(ms: number): void {
    this.cacheMs = ms;
  }

  /** Drops a tenant from the cache: the next request reads it again. */
  forget(id: string): void {
    const hit = this.cache.get(`id:${id}`);
    this.cache.delete(`id:${id}`);
    if (hit) this.cache.delete(`slug:${hit.tenant.slug}`);
  }

  /** Whether this slug names a tenant this node has seen lately (no I/O): keeps metric labels to real tenants. */
  isKnown(slug: string): boolean {
    return this.cache.has(`slug:${slug}`);
  }

  private async cached(key: string, load: () => Promise<TenantTable | undefined>): Promise<Tenant | undefined> {
    const now = this.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return this.view(hit.tenant);
    const row = await load();
    if (!row) return undefined;
    const tenant = toTenant(row);
    const entry = { tenant, until: now + this.cacheMs };
    this.cache.set(`slug:${tenant.slug}`, entry);
    this.cache.set(`id:${tenant.id}`, entry);
    return this.view(tenant);
  }

  /** Every tenant, a page at a time in id order (`after`: the last id of the previous page), for work that visits them all. */
  async page(after: string, limit: number): Promise<Tenant[]> {
    const rows = await this.db.selectFrom('tenants').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute();
    return rows.map(toTenant);
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('tenants')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

function toTenant(row: TenantTable): Tenant {
  return { id: row.id, slug: row.slug, name: row.name, policy: parsePolicy(row.policy), createdAt: row.created_at };
}
