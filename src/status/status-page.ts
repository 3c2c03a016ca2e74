import { html } from '../http/page/html.ts';
import { layout } from '../http/page/layout.ts';
import type { ChannelHealth } from '../delivery/provider-chain.ts';
import type { ClusterView } from '../cluster/headroom.ts';
import type { Incident } from '../incidents/incidents.ts';
import type { UptimeDay } from '../incidents/uptime.ts';
import { uptimeBar } from './uptime-bar.ts';

/** Incidents and 90-day history for the page; the feed's address for subscribers. */
export interface StatusHistory {
  current: Incident[];
  recent: Incident[];
  bars: { label: string; days: UptimeDay[] }[];
  feedUrl: string;
  /** A tenant's own page shows its name. */
  tenantName?: string;
}

const STATES: Record<string, string> = { up: 'Working', degraded: 'Degraded', down: 'Down' };
const CHANNELS: Record<string, string> = { sms: 'Text message codes', voice: 'Phone call codes', email: 'Email codes' };
const HEADLINES: Record<string, string> = {
  operational: 'All systems are working',
  degraded: 'Some parts are degraded; sign-in keeps working with the methods that are up',
  draining: 'This node is shutting down; others will answer',
};

interface Components {
  durable: { state: string; fallback?: string };
  ephemeral: { state: string; fallback?: string };
  admission: { shedTotal: number; inFlight: number; queued: number; limit: number };
  delivery: Partial<Record<string, ChannelHealth>>;
}

/**
 * The public status page (`/status`): what works and what does not, in words
 * a tenant's users understand. The same figures are at `/api/v1/status`.
 */
export function statusPage(status: string, components: Components, cluster: ClusterView | null = null, history?: StatusHistory): string {
  const row = (name: string, state: string, note = '') =>
    html`<tr><th scope="row">${name}</th><td data-state="${state}">${STATES[state] ?? state}</td><td>${note}</td></tr>`;
  const channels = Object.entries(components.delivery).filter((e): e is [string, ChannelHealth] => Boolean(e[1]));
  // In words only: the page is public, and request counts are the operators' business.
  const busy = components.admission.queued > 0;
  return layout({
    title: 'Status',
    tenantName: history?.tenantName ?? 'Steadfast',
    head: history ? html`<link rel="alternate" type="application/atom+xml" title="Incidents" href="${history.feedUrl}">` : undefined,
    body: html`<div class="card">
<h1>${HEADLINES[status] ?? status}</h1>
${history ? currentIncidents(history.current) : ''}
<div class="table-scroll"><table>
<thead><tr><th scope="col">Part</th><th scope="col">State</th><th scope="col">Notes</th></tr></thead>
<tbody>
${row(
  'Sign-in and accounts (database)',
  components.durable.state,
  components.durable.fallback === 'local-fallback'
    ? 'The database is unreachable: returning users sign in from the local fallback; changes to accounts and methods are paused until it is back.'
    : '',
)}
${row(
  'Sign-ins in progress (shared state)',
  components.ephemeral.state,
  components.ephemeral.fallback ? 'The shared cache is unreachable; sign-ins continue with a fallback (a sign-in in progress may have to start again).' : '',
)}
${busy ? row('Capacity', 'degraded', 'Busy right now: some requests are turned away to keep answers fast. Try again in a moment.') : row('Capacity', 'up')}
${channels.map(([channel, health]) =>
  row(
    CHANNELS[channel] ?? channel,
    health.state,
    health.state === 'down'
      ? 'Use another sign-in method (authenticator app, passkey, another channel), or ask your administrator for a Temporary Access Pass.'
      : health.state === 'degraded'
        ? 'A backup provider is carrying the codes.'
        : '',
  ),
)}
</tbody></table></div>
${history ? historySection(history) : ''}
${cluster ? clusterSection(cluster) : ''}
<p class="hint">Updated when the page loads. Machine-readable: <a href="/api/v1/status">/api/v1/status</a>.${history ? html` Subscribe to incidents: <a href="${history.feedUrl}">Atom feed</a>.` : ''}</p>
</div>`,
  });
}

const NODE_STATES: Record<string, string> = { up: 'Up', draining: 'Leaving (draining)', down: 'Not answering' };
const perSecond = (n: number) => `${n.toLocaleString('en-US', { maximumFractionDigits: 1 })} per second`;

/** The cluster in words: who is up, what they carry, and whether losing the largest node is survivable at the observed peak. */
function clusterSection(cluster: ClusterView) {
  const up = cluster.nodes.filter((n) => n.state === 'up');
  const verdict =
    up.length < 2
      ? `Only ${up.length === 1 ? 'one node is' : 'no node is'} up: losing it stops sign-in until it is back.`
      : cluster.survivesNodeLoss
        ? `Losing the largest node would leave ${perSecond(cluster.capacityAfterLossPerSecond)}, enough for the busiest moment seen (${perSecond(cluster.peakLoadPerSecond)}).`
        : `Losing the largest node would leave ${perSecond(cluster.capacityAfterLossPerSecond)}, less than the busiest moment seen (${perSecond(cluster.peakLoadPerSecond)}): sign-ins would slow down or be turned away. Add capacity before changing anything.`;
  return html`<h2>Nodes</h2>
<p data-survives-node-loss="${String(cluster.survivesNodeLoss)}">${up.length} of ${cluster.nodes.length} nodes up, together carrying up to ${perSecond(cluster.capacityPerSecond)} password sign-ins. ${verdict}</p>
<div class="table-scroll"><table>
<thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col">Capacity</th><th scope="col">Load now</th><th scope="col">Last heard from</th></tr></thead>
<tbody>
${cluster.nodes.map((n) => html`<tr><th scope="row">${n.name}</th><td data-state="${n.state}">${NODE_STATES[n.state] ?? n.state}</td><td>${perSecond(n.capacityPerSecond)}</td><td>${perSecond(n.loadPerSecond)}</td><td><time datetime="${n.lastSeen}">${n.lastSeen.replace('T', ' ').slice(0, 19)} UTC</time></td></tr>`)}
</tbody></table></div>`;
}

const when = (ms: number) => html`<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC</time>`;

function incidentBlock(i: Incident) {
  return html`<article class="incident" data-component="${i.component}" data-ongoing="${String(i.endedAt === null)}">
<h3>${i.title}</h3>
<p>Since ${when(i.startedAt)}${i.endedAt !== null ? html`, resolved ${when(i.endedAt)}` : i.expectedEndAt !== null ? html`; expected to be over by ${when(i.expectedEndAt)}` : ''}.</p>
<p><strong>What to do:</strong> ${i.advice}</p>
${i.updates.length > 0 ? html`<ul>${i.updates.map((u) => html`<li>${when(u.at)}: ${u.text}</li>`)}</ul>` : ''}
</article>`;
}

function currentIncidents(current: Incident[]) {
  if (current.length === 0) return html`<p data-incidents="none">No current incidents.</p>`;
  return html`<section aria-labelledby="current-incidents"><h2 id="current-incidents">Current incidents</h2>${current.map(incidentBlock)}</section>`;
}

function historySection(history: StatusHistory) {
  const past = history.recent.filter((i) => i.endedAt !== null).slice(0, 20);
  return html`<h2>The last 90 days</h2>
${history.bars.map((b) => uptimeBar(b.label, b.days))}
${past.length > 0 ? html`<h2>Past incidents</h2>${past.map(incidentBlock)}` : ''}`;
}
