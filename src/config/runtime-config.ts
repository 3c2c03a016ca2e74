import type { Delivery, DeliveryPort } from '../delivery/delivery.ts';
import type { Channel, OutboundMessage } from '../delivery/channel.ts';
import type { SendOptions } from '../delivery/provider-chain.ts';
import type { AdmissionController, Admission } from '../admission/admission-controller.ts';
import type { AdmissionClass } from '../admission/admission-class.ts';
import { currentTicket } from '../admission/work-ticket.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { TenantPolicy } from '../directory/tenant-policy.ts';
import type { Tenants } from '../directory/tenants.ts';
import { parsePolicy } from '../directory/policy.ts';
import type { DeliveryConfig } from '../delivery/delivery-config.ts';
import type { AdmissionOptions } from '../admission/admission-controller.ts';
import type { ConfigVersionTable } from '../store/durable/schema.ts';
import type { SendLimits } from '../methods/out-of-band/send-limits.ts';
import { CanarySlicer } from './canary-slice.ts';
import type { ConfigSecrets } from './config-secrets.ts';
import { NODE_SCOPE, type ConfigVersions } from './config-versions.ts';
import { parseRuntimeSettings, type RuntimeSettings } from './runtime-settings.ts';
import type { Slice, SliceHealth } from './slice-health.ts';

/** One version of the node settings as this node runs it: its delivery providers (with their breakers) and admission lanes. */
interface Running {
  version: number;
  settings: RuntimeSettings;
  delivery: Delivery;
  admission: AdmissionController;
  sendLimits: SendLimits;
}

interface Canary {
  version: number;
  percent: number;
  bakeSeconds: number;
  createdAt: number;
}

interface PolicyCanary extends Canary {
  tenantId: string;
  slug: string;
  policy: TenantPolicy;
}

export interface RuntimeConfigDeps {
  versions: ConfigVersions;
  secrets: ConfigSecrets;
  baseline: RuntimeSettings;
  slicer: CanarySlicer;
  health: SliceHealth;
  tenants: Tenants;
  /** Builds a version's delivery; `slice` says, at the time of each event, which slice it serves. */
  makeDelivery(config: DeliveryConfig, slice: () => Slice): Delivery;
  makeAdmission(options: AdmissionOptions): AdmissionController;
  makeSendLimits(limits: DeliveryConfig['limits']): SendLimits;
  /** A node took a version into use, or could not. */
  onChange?(event: { scope: string; version: number; slice: Slice | 'ended' }): void;
  onError?(err: unknown, what: string): void;
}

/** Delivery and admission of a replaced version stay open this long for the requests still using them. */
const RETIRE_AFTER_MS = 30_000;

/**
 * The runtime configuration this node runs: the last good version for
 * everyone, and while a canary bakes, the canary version for the clients in
 * its slice. `refresh` reads the durable store (a node polls it, see
 * `CanaryGuard`) and takes new versions into use without a restart: new
 * providers with fresh breakers, new admission lanes, a new tenant cache time,
 * a tenant's canary policy. Requests find their slice by the bucket admission
 * gave them (`WorkTicket.bucket`); work outside any request runs on the last
 * good version.
 */
export class RuntimeConfig {
  private stable: Running;
  private canary: (Running & Canary) | undefined;
  private readonly policyCanaries = new Map<string, PolicyCanary>();
  /** The delivery every method is given: routes each send to its request's slice. */
  readonly delivery: DeliveryPort;
  /** The admission every request passes: the lanes of its slice. */
  readonly admission: Admission;

  private constructor(
    private readonly deps: RuntimeConfigDeps,
    baseline: Running,
  ) {
    this.stable = baseline;
    this.delivery = {
      configured: (channel: Channel) => this.deliveryFor(currentTicket()?.bucket).configured(channel),
      available: (channel: Channel) => this.deliveryFor(currentTicket()?.bucket).available(channel),
      send: (message: OutboundMessage, options?: SendOptions) => this.deliveryFor(currentTicket()?.bucket).send(message, options),
      // The status page shows what everyone runs; the canary's own health is in `config status`.
      health: () => this.stable.delivery.health(),
    };
    const stableState = () => this.stable.admission.state;
    this.admission = {
      get state() {
        return stableState();
      },
      admit: (cls: AdmissionClass, tenant: string, signal?: AbortSignal, bucket?: number) => this.admissionFor(bucket).admit(cls, tenant, signal),
    };
    deps.tenants.useView((tenant) => this.policyView(tenant));
  }

  /** Starts on the start-up configuration (version 0), then takes what the store holds. */
  static async create(deps: RuntimeConfigDeps): Promise<RuntimeConfig> {
    const runtime = new RuntimeConfig(deps, {
      version: 0,
      settings: deps.baseline,
      delivery: deps.makeDelivery(deps.baseline.delivery, () => 'stable'),
      admission: deps.makeAdmission(deps.baseline.admission),
      sendLimits: deps.makeSendLimits(deps.baseline.delivery.limits),
    });
    // A node whose store is away at start runs the start-up configuration until a later refresh reaches it.
    await runtime.refresh().catch((err: unknown) => deps.onError?.(err, 'reading configuration versions'));
    return runtime;
  }

  /** The versions in use: what `config status` and the status JSON show. */
  get versions(): { stable: number; canary?: { version: number; percent: number }; policyCanaries: { tenant: string; version: number; percent: number }[] } {
    return {
      stable: this.stable.version,
      ...(this.canary ? { canary: { version: this.canary.version, percent: this.canary.percent } } : {}),
      policyCanaries: [...this.policyCanaries.values()].map((c) => ({ tenant: c.slug, version: c.version, percent: c.percent })),
    };
  }

  /** The node canary and the tenant policy canaries baking now, for the guard. */
  get baking(): { scope: string; key: string; canary: Canary }[] {
    const out: { scope: string; key: string; canary: Canary }[] = [];
    if (this.canary) out.push({ scope: NODE_SCOPE, key: NODE_SCOPE, canary: this.canary });
    for (const c of this.policyCanaries.values()) out.push({ scope: `tenant:${c.tenantId}`, key: `tenant:${c.slug}`, canary: c });
    return out;
  }

  /** The last good version's settings, as everyone outside the canary runs them. */
  get settings(): RuntimeSettings {
    return this.stable.settings;
  }

  /** The settings of the current request's slice (code settings, send limits, countries are read through this at each use). */
  current(): RuntimeSettings {
    return this.runningFor(currentTicket()?.bucket).settings;
  }

  /** The send limits of the current request's slice. */
  currentSendLimits(): SendLimits {
    return this.runningFor(currentTicket()?.bucket).sendLimits;
  }

  private runningFor(bucket: number | undefined): Running {
    return this.canary && CanarySlicer.inCanary(bucket, this.canary.percent) ? this.canary : this.stable;
  }

  /**
   * The client's bucket, computed only while a canary could apply to it:
   * without one, requests carry none and cost nothing extra.
   */
  bucketFor(tenantSlug: string | undefined, client: string): number | undefined {
    if (!this.canary && !(tenantSlug && this.policyCanaries.has(tenantSlug))) return undefined;
    return this.deps.slicer.bucket(tenantSlug ?? '', client);
  }

  /** Counts an answered request towards the comparisons it belongs to. */
  observe(tenantSlug: string | undefined, bucket: number | undefined, cls: string, status: number, ms: number): void {
    if (bucket === undefined) return;
    if (this.canary) this.deps.health.request(NODE_SCOPE, CanarySlicer.inCanary(bucket, this.canary.percent) ? 'canary' : 'stable', status, ms, cls);
    const policy = tenantSlug ? this.policyCanaries.get(tenantSlug) : undefined;
    if (policy) this.deps.health.request(`tenant:${policy.slug}`, CanarySlicer.inCanary(bucket, policy.percent) ? 'canary' : 'stable', status, ms, cls);
  }

  /**
   * A sign-in step's outcome, counted for the slice of the request it ran in.
   * A step that ends in a failure, or in "register a method first" for a user
   * who has methods, counts as failed: a policy demanding a method nobody has
   * answers 200 and still lets nobody through.
   */
  observeSignin(tenantId: string, step: string, outcome: 'success' | 'failure', reason: string): void {
    const bucket = currentTicket()?.bucket;
    if (bucket === undefined) return;
    const failed = outcome === 'failure' || reason === 'registration_required';
    if (this.canary)
      this.deps.health.signinStep(NODE_SCOPE, CanarySlicer.inCanary(bucket, this.canary.percent) ? 'canary' : 'stable', `signin:${step}`, failed);
    for (const policy of this.policyCanaries.values()) {
      if (policy.tenantId === tenantId)
        this.deps.health.signinStep(`tenant:${policy.slug}`, CanarySlicer.inCanary(bucket, policy.percent) ? 'canary' : 'stable', `signin:${step}`, failed);
    }
  }

  private deliveryFor(bucket: number | undefined): Delivery {
    return this.runningFor(bucket).delivery;
  }

  admissionFor(bucket: number | undefined): AdmissionController {
    return this.runningFor(bucket).admission;
  }

  /** The tenant as the current request sees it: with the canary policy when its client is in the tenant's canary slice. */
  private policyView(tenant: Tenant): Tenant {
    const canary = this.policyCanaries.get(tenant.slug);
    if (!canary || canary.tenantId !== tenant.id) return tenant;
    return CanarySlicer.inCanary(currentTicket()?.bucket, canary.percent) ? { ...tenant, policy: canary.policy } : tenant;
  }

  /** Reads the versions to run from the durable store and takes changes into use. */
  async refresh(): Promise<void> {
    const [lastGood, canaries] = await Promise.all([this.deps.versions.lastGood(NODE_SCOPE), this.deps.versions.canaries()]);
    const nodeCanary = canaries.find((c) => c.scope === NODE_SCOPE);

    if (lastGood && Number(lastGood.version) !== this.stable.version) {
      // A promoted canary keeps its providers and breakers: it has been serving its slice all along.
      const next = this.canary?.version === Number(lastGood.version) ? this.canary : this.build(lastGood);
      if (next) {
        const old = this.stable;
        this.stable = next;
        if (old !== this.canary) this.retire(old);
        this.deps.tenants.setCacheMs(next.settings.cache.tenantSeconds * 1000);
        this.deps.onChange?.({ scope: NODE_SCOPE, version: next.version, slice: 'stable' });
      }
    }

    if (this.canary && this.canary.version !== (nodeCanary ? Number(nodeCanary.version) : undefined)) {
      const ended = this.canary;
      this.canary = undefined;
      this.deps.health.end(NODE_SCOPE);
      if (ended !== this.stable) this.retire(ended);
      this.deps.onChange?.({ scope: NODE_SCOPE, version: ended.version, slice: 'ended' });
    }
    if (nodeCanary && !this.canary) {
      const built = this.build(nodeCanary);
      if (built) {
        this.canary = { ...built, ...canaryOf(nodeCanary) };
        this.deps.health.begin(NODE_SCOPE);
        this.deps.onChange?.({ scope: NODE_SCOPE, version: built.version, slice: 'canary' });
      }
    }

    const seen = new Set<string>();
    for (const row of canaries.filter((c) => c.scope.startsWith('tenant:'))) {
      const tenantId = row.scope.slice('tenant:'.length);
      const tenant = await this.deps.tenants.findById(tenantId);
      if (!tenant) continue;
      seen.add(tenant.slug);
      const current = this.policyCanaries.get(tenant.slug);
      if (current?.version === Number(row.version)) continue;
      this.policyCanaries.set(tenant.slug, { ...canaryOf(row), tenantId, slug: tenant.slug, policy: parsePolicy(row.document) });
      this.deps.health.begin(`tenant:${tenant.slug}`);
      this.deps.onChange?.({ scope: row.scope, version: Number(row.version), slice: 'canary' });
    }
    for (const [slug, canary] of this.policyCanaries) {
      if (seen.has(slug)) continue;
      this.policyCanaries.delete(slug);
      this.deps.health.end(`tenant:${slug}`);
      // The tenant is read again, with its promoted (or unchanged) policy.
      this.deps.tenants.forget(canary.tenantId);
      this.deps.onChange?.({ scope: `tenant:${canary.tenantId}`, version: canary.version, slice: 'ended' });
    }
  }

  private build(row: ConfigVersionTable): Running | undefined {
    const version = Number(row.version);
    try {
      const { settings, problems } = parseRuntimeSettings(this.deps.secrets.open(JSON.parse(row.document)), this.deps.baseline);
      // Validated in full when applied; a version that no longer parses (a newer release's setting) is not run.
      if (problems.length > 0) throw new Error(`version ${version} does not validate here: ${problems.join('; ')}`);
      const slice = (): Slice => (this.canary?.version === version ? 'canary' : 'stable');
      return {
        version,
        settings,
        delivery: this.deps.makeDelivery(settings.delivery, slice),
        admission: this.deps.makeAdmission(settings.admission),
        sendLimits: this.deps.makeSendLimits(settings.delivery.limits),
      };
    } catch (err) {
      this.deps.onError?.(err, `taking configuration version ${version} into use`);
      return undefined;
    }
  }

  private retire(running: Running): void {
    setTimeout(
      () => void running.delivery.close().catch((err: unknown) => this.deps.onError?.(err, 'closing retired delivery providers')),
      RETIRE_AFTER_MS,
    ).unref();
  }

  async close(): Promise<void> {
    await this.stable.delivery.close();
    if (this.canary && this.canary !== this.stable) await this.canary.delivery.close();
  }
}

function canaryOf(row: ConfigVersionTable): Canary {
  return { version: Number(row.version), percent: Number(row.canary_percent), bakeSeconds: Number(row.bake_seconds), createdAt: Number(row.created_at) };
}
