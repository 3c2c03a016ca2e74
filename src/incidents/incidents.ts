import type { Db } from '../store/durable/database.ts';
import type { IncidentTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { newSortableId } from '../crypto/random.ts';

export interface IncidentUpdate {
  at: number;
  text: string;
}

/** Something that kept (or keeps) people from signing in as usual, as the status pages show it. */
export interface Incident {
  id: string;
  /** Empty: every tenant sees it. */
  tenantId: string;
  /** What is affected: `durable`, `ephemeral`, `sms`, `voice`, `email`, `config`, or an administrator's own word. */
  component: string;
  title: string;
  /** What users should do meanwhile. */
  advice: string;
  source: 'auto' | 'admin';
  startedAt: number;
  expectedEndAt: number | null;
  endedAt: number | null;
  updates: IncidentUpdate[];
  updatedAt: number;
}

export interface NewIncident {
  tenantId?: string;
  component: string;
  title: string;
  advice: string;
  source: 'auto' | 'admin';
  startedAt?: number;
  expectedEndAt?: number | null;
}

const DAY_MS = 86_400_000;
const text = (value: string, max: number, what: string) => {
  const t = value.trim();
  if (t.length === 0 || t.length > max) throw new AppError('invalid-request', `${what} must be 1 to ${max} characters`);
  return t;
};

/**
 * Incidents in the durable store: opened and closed by nodes when a
 * component goes down or a canary is rolled back (`source: auto`), or posted
 * and updated by administrators. Every query is scoped to the global
 * incidents and one tenant's own.
 */
export class Incidents {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async open(input: NewIncident): Promise<Incident> {
    const now = this.clock.now();
    const row: IncidentTable = {
      id: newSortableId(now),
      tenant_id: input.tenantId ?? '',
      component: text(input.component, 100, 'the component'),
      title: text(input.title, 300, 'the title'),
      advice: text(input.advice, 2000, 'the advice'),
      source: input.source,
      started_at: input.startedAt ?? now,
      expected_end_at: input.expectedEndAt ?? null,
      ended_at: null,
      updates: '[]',
      updated_at: now,
    };
    await this.db.insertInto('incidents').values(row).execute();
    return toIncident(row);
  }

  /** The automatic incident of a component: opened unless one is open already (several nodes see the same outage). */
  async openAuto(input: Omit<NewIncident, 'source'>): Promise<Incident> {
    const open = await this.openFor(input.tenantId ?? '', input.component, 'auto');
    return open ?? this.open({ ...input, source: 'auto' });
  }

  /** Ends the component's open automatic incident, with a last word. */
  async closeAuto(component: string, note: string, tenantId = '', endedAt = this.clock.now()): Promise<Incident | undefined> {
    const open = await this.openFor(tenantId, component, 'auto');
    if (!open) return undefined;
    return this.update(open.id, tenantId, { text: note, resolved: true, at: endedAt });
  }

  /** An update: a note, a new expected end, or the end. Scoped: a tenant updates only its own incidents. */
  async update(id: string, tenantId: string, change: { text?: string; expectedEndAt?: number | null; resolved?: boolean; at?: number }): Promise<Incident> {
    const row = await this.db.selectFrom('incidents').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
    if (!row) throw new AppError('not-found', 'no such incident');
    const now = change.at ?? this.clock.now();
    const updates = JSON.parse(row.updates) as IncidentUpdate[];
    if (change.text !== undefined) updates.push({ at: now, text: text(change.text, 2000, 'the update') });
    const set: Partial<IncidentTable> = { updates: JSON.stringify(updates.slice(-100)), updated_at: now };
    if (change.expectedEndAt !== undefined) set.expected_end_at = change.expectedEndAt;
    if (change.resolved && row.ended_at === null) set.ended_at = now;
    await this.db.updateTable('incidents').set(set).where('id', '=', id).where('tenant_id', '=', tenantId).execute();
    return toIncident({ ...row, ...set });
  }

  /** Open incidents every tenant sees, and the tenant's own. */
  async current(tenantId?: string): Promise<Incident[]> {
    const rows = await this.db
      .selectFrom('incidents')
      .selectAll()
      .where('tenant_id', 'in', tenantId ? ['', tenantId] : [''])
      .where('ended_at', 'is', null)
      .orderBy('started_at', 'desc')
      .limit(50)
      .execute();
    return rows.map(toIncident);
  }

  /** Incidents (global and the tenant's) that were open at some time in the last `days` days, newest first. */
  async recent(tenantId: string | undefined, days = 90): Promise<Incident[]> {
    const from = this.clock.now() - days * DAY_MS;
    const rows = await this.db
      .selectFrom('incidents')
      .selectAll()
      .where('tenant_id', 'in', tenantId ? ['', tenantId] : [''])
      .where((eb) => eb.or([eb('ended_at', 'is', null), eb('ended_at', '>=', from)]))
      .orderBy('started_at', 'desc')
      .limit(500)
      .execute();
    return rows.map(toIncident);
  }

  private async openFor(tenantId: string, component: string, source: 'auto' | 'admin'): Promise<Incident | undefined> {
    const row = await this.db
      .selectFrom('incidents')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('component', '=', component)
      .where('source', '=', source)
      .where('ended_at', 'is', null)
      .executeTakeFirst();
    return row ? toIncident(row) : undefined;
  }
}

function toIncident(row: IncidentTable): Incident {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    component: row.component,
    title: row.title,
    advice: row.advice,
    source: row.source,
    startedAt: Number(row.started_at),
    expectedEndAt: row.expected_end_at === null ? null : Number(row.expected_end_at),
    endedAt: row.ended_at === null ? null : Number(row.ended_at),
    updates: JSON.parse(row.updates) as IncidentUpdate[],
    updatedAt: Number(row.updated_at),
  };
}
