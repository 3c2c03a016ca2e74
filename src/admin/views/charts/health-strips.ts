import { html, type SafeHtml } from '../../../http/page/html.ts';
import { chartFigure } from './chart-figure.ts';

export interface HealthRow {
  label: string;
  hours: { start: number; delivered: number; failed: number }[];
}

type HourState = 'idle' | 'healthy' | 'some' | 'failing';

const W = 400;
/** Each provider: its name on a line of its own (room on a phone), then its 24 hours. */
const ROW = 46;

/** An hour's state: no traffic, all delivered, some failed, or more failed than delivered. */
function stateOf(h: { delivered: number; failed: number }): HourState {
  if (h.delivered + h.failed === 0) return 'idle';
  if (h.failed === 0) return 'healthy';
  return h.failed > h.delivered ? 'failing' : 'some';
}

const STATE_WORDS: Record<HourState, string> = { idle: 'no messages', healthy: 'all delivered', some: 'some failed', failing: 'mostly failed' };
const hourLabel = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/**
 * One row of 24 cells per provider, an hour each, coloured by how the hour
 * went (and told in words in the description and the table). Shares, never
 * counts: the providers serve every tenant of the deployment.
 */
export function healthStrips(v: { id: string; title: string; rows: HealthRow[] }): SafeHtml {
  const cell = W / 24;
  const height = v.rows.length * ROW + 18;
  const summary = (r: HealthRow) => {
    const states = r.hours.map(stateOf);
    const n = (s: HourState) => states.filter((x) => x === s).length;
    const bad = r.hours.filter((h) => stateOf(h) === 'failing' || stateOf(h) === 'some').map((h) => hourLabel(h.start));
    return `${r.label}: ${n('healthy')} hours all delivered, ${n('some')} with some failures, ${n('failing')} mostly failed, ${n('idle')} without messages${bad.length > 0 ? ` (failures at ${bad.join(', ')} UTC)` : ''}`;
  };
  const body = html`${v.rows.map(
    (r, row) => html`<g transform="translate(0 ${row * ROW})">
<text x="0" y="14" class="label">${r.label}</text>
${r.hours.map((h, i) => html`<rect class="health-${stateOf(h)}" x="${i * cell + 1}" y="20" width="${cell - 2}" height="${ROW - 24}" rx="2"></rect>`)}
</g>`,
  )}<g class="axis">${[0, 6, 12, 18].map((i) => html`<text x="${i * cell}" y="${height - 4}">${v.rows[0] ? hourLabel(v.rows[0].hours[i]!.start) : ''}</text>`)}</g>`;
  const share = (h: { delivered: number; failed: number }) =>
    h.delivered + h.failed === 0 ? '' : ` (${Math.round((h.delivered / (h.delivered + h.failed)) * 100)}% delivered)`;
  return chartFigure({
    id: v.id,
    title: v.title,
    desc: `${v.rows.map(summary).join('. ')}.`,
    width: W,
    height,
    body,
    legend: (['healthy', 'some', 'failing', 'idle'] as const).map((s) => ({
      cls: `health-${s}`,
      label: STATE_WORDS[s][0]!.toUpperCase() + STATE_WORDS[s].slice(1),
    })),
    table: {
      caption: v.title,
      head: ['Hour (UTC)', ...v.rows.map((r) => r.label)],
      rows: (v.rows[0]?.hours ?? []).map((h, i) => [hourLabel(h.start), ...v.rows.map((r) => `${STATE_WORDS[stateOf(r.hours[i]!)]}${share(r.hours[i]!)}`)]),
    },
  });
}
