import { html, type SafeHtml } from '../http/page/html.ts';
import { KIND_NAMES, type Kind } from './journeys.ts';
import type { Figures, SecondFigures } from './recorder.ts';

export interface ReportData {
  title: string;
  url: string;
  tenant: string;
  startedAt: string;
  rate: number;
  durationSeconds: number;
  mix: Partial<Record<Kind, number>>;
  users: number;
  overall: Figures;
  byKind: Partial<Record<Kind, Figures>>;
  errors: [string, number][];
  timeline: SecondFigures[];
  drill?: DrillFigures | undefined;
}

export interface DrillFigures {
  atSecond: number;
  action: string;
  failedAfter: number;
  firstFailureAfterMs: number | null;
  windowMs: number;
}

interface Series {
  name: string;
  color: string;
  values: number[];
}

const W = 860;
const H = 260;
const PAD = { left: 56, right: 16, top: 16, bottom: 40 };

function niceMax(n: number): number {
  if (n <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= n) ?? 10 * magnitude;
}

/** A line chart as inline SVG: no script, no fonts or files from anywhere else. */
function lineChart(label: string, unit: string, series: Series[], marker?: { at: number; text: string }): SafeHtml {
  const length = Math.max(1, ...series.map((s) => s.values.length));
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i: number) => PAD.left + (i / Math.max(1, length - 1)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const xTicks = Array.from({ length: 6 }, (_, i) => Math.round((i / 5) * (length - 1)));
  return html`<figure>
<figcaption>${label}</figcaption>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}">
${ticks.map((t) => html`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(t)}" y2="${y(t)}" class="grid"/><text x="${PAD.left - 6}" y="${y(t) + 4}" text-anchor="end">${Number(t.toPrecision(3))}</text>`)}
${xTicks.map((i) => html`<text x="${x(i)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${i} s</text>`)}
<text x="${PAD.left}" y="${H - 6}">${unit}</text>
${marker ? html`<line x1="${x(marker.at)}" x2="${x(marker.at)}" y1="${PAD.top}" y2="${H - PAD.bottom}" class="marker"/><text x="${x(marker.at) + 4}" y="${PAD.top + 12}" class="marker-text">${marker.text}</text>` : ''}
${series.map((s) => html`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`)}
</svg>
<p class="legend">${series.map((s) => html`<span><i style="background:${s.color}"></i>${s.name}</span>`)}</p>
</figure>`;
}

const CSS = `body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:920px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem}table{border-collapse:collapse;margin:1rem 0}td,th{padding:.3rem .8rem;border-bottom:1px solid #d0d7de;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:1.5rem 0}figcaption{font-weight:600}svg{width:100%;height:auto;font-size:11px}
svg text{fill:#57606a}.grid{stroke:#eaeef2}.marker{stroke:#cf222e;stroke-dasharray:4 3}.marker-text{fill:#cf222e}
.legend span{margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}.bad{color:#cf222e}`;

const KIND_COLORS: Record<Kind, string> = { totp: '#0969da', passkey: '#1a7f37', sms: '#9a6700', setup: '#8250df' };

/** The `--report` page: one self-contained HTML file (inline CSS and SVG). */
export function renderReport(data: ReportData): string {
  const t = data.timeline;
  const marker = data.drill ? { at: data.drill.atSecond, text: `drill: ${data.drill.action}` } : undefined;
  const row = (name: string, f: Figures) =>
    html`<tr><td>${name}</td><td>${f.offered}</td><td>${f.succeeded}</td><td class="${f.failed > 0 ? 'bad' : ''}">${f.failed}</td><td>${f.p50Ms}</td><td>${f.p99Ms}</td></tr>`;
  const kinds = Object.keys(data.byKind) as Kind[];
  return `<!doctype html>
${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${data.title}</title><style>${CSS}</style></head>
<body>
<h1>${data.title}</h1>
<p>${data.url}, tenant <code>${data.tenant}</code>, started ${data.startedAt}: ${data.rate} journeys per second offered for ${data.durationSeconds} s by ${data.users} temporary users; mix ${kinds.map((k) => `${KIND_NAMES[k]} ${data.mix[k]}%`).join(', ')}.</p>
<table><thead><tr><th>journey</th><th>offered</th><th>succeeded</th><th>failed</th><th>p50 ms</th><th>p99 ms</th></tr></thead>
<tbody>${kinds.map((k) => row(KIND_NAMES[k], data.byKind[k]!))}${row('all', data.overall)}</tbody></table>
${data.drill ? html`<p><strong>Failover drill</strong> at ${data.drill.atSecond} s (${data.drill.action}): ${data.drill.failedAfter} journeys failed after it${data.drill.firstFailureAfterMs !== null ? html`, the first ${data.drill.firstFailureAfterMs} ms after the drill; failures stopped ${data.drill.windowMs} ms after it` : html`; no failover window was visible`}.</p>` : ''}
${lineChart(
  'Throughput: journeys finished per second',
  'journeys/s',
  [
    { name: 'succeeded', color: '#1a7f37', values: t.map((s) => s.succeeded) },
    { name: 'failed', color: '#cf222e', values: t.map((s) => s.failed) },
  ],
  marker,
)}
${lineChart(
  'Latency of successful journeys, by second',
  'ms',
  [
    { name: 'p50', color: '#0969da', values: t.map((s) => s.p50Ms) },
    { name: 'p90', color: '#9a6700', values: t.map((s) => s.p90Ms) },
    { name: 'p99', color: '#cf222e', values: t.map((s) => s.p99Ms) },
  ],
  marker,
)}
${lineChart(
  'Failed journeys per second, by kind',
  'failed/s',
  kinds.map((k) => ({ name: KIND_NAMES[k], color: KIND_COLORS[k], values: t.map((s) => s.failedByKind[k] ?? 0) })),
  marker,
)}
<h2>Errors</h2>
${data.errors.length === 0 ? html`<p>None.</p>` : html`<table><thead><tr><th>step that failed</th><th>journeys</th></tr></thead><tbody>${data.errors.map(([label, n]) => html`<tr><td><code>${label}</code></td><td>${n}</td></tr>`)}</tbody></table>`}
<p><small>Made by <code>steadfast loadtest</code>.</small></p>
</body></html>`}
`;
}
