import { html, type SafeHtml } from '../../../http/page/html.ts';
import { chartFigure, niceMax } from './chart-figure.ts';

export interface HourBar {
  /** Start of the hour, epoch ms. */
  start: number;
  good: number;
  bad: number;
}

const W = 400;
const H = 200;
const LEFT = 36;
const BOTTOM = 24;
const TOP = 8;

const hourLabel = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/**
 * Stacked bars, one per hour (good below, bad above), with a round scale and
 * an hour under every sixth bar; hours in UTC, as the logs show them.
 */
export function hourlyChart(v: { id: string; title: string; hours: HourBar[]; good: string; bad: string }): SafeHtml {
  const max = niceMax(Math.max(...v.hours.map((h) => h.good + h.bad)));
  const plotH = H - BOTTOM - TOP;
  const slot = (W - LEFT) / v.hours.length;
  const y = (n: number) => TOP + plotH - (n / max) * plotH;
  const totalGood = v.hours.reduce((s, h) => s + h.good, 0);
  const totalBad = v.hours.reduce((s, h) => s + h.bad, 0);
  const busiest = v.hours.reduce((a, b) => (b.good + b.bad > a.good + a.bad ? b : a));
  const worst = v.hours.reduce((a, b) => (b.bad > a.bad ? b : a));
  const desc =
    `Over the last 24 hours: ${totalGood} ${v.good.toLowerCase()} and ${totalBad} ${v.bad.toLowerCase()}. ` +
    `Busiest hour ${hourLabel(busiest.start)} UTC (${busiest.good + busiest.bad}).` +
    (worst.bad > 0 ? ` Most failures at ${hourLabel(worst.start)} UTC (${worst.bad}).` : '');
  const body = html`<g class="axis">
${[0, max / 2, max].map((t) => html`<line x1="${LEFT}" x2="${W}" y1="${y(t)}" y2="${y(t)}" class="grid"></line><text x="${LEFT - 4}" y="${y(t) + 4}" text-anchor="end">${t}</text>`)}
${v.hours.map((h, i) => (i % 6 === 0 ? html`<text x="${LEFT + i * slot + slot / 2}" y="${H - 6}" text-anchor="middle">${hourLabel(h.start)}</text>` : ''))}
</g>
<g>${v.hours.map((h, i) => {
    const x = LEFT + i * slot + 1;
    const w = Math.max(1, slot - 2);
    return html`<rect class="good" x="${x}" y="${y(h.good)}" width="${w}" height="${y(0) - y(h.good)}"></rect><rect class="bad" x="${x}" y="${y(h.good + h.bad)}" width="${w}" height="${y(h.good) - y(h.good + h.bad)}"></rect>`;
  })}</g>`;
  return chartFigure({
    id: v.id,
    title: v.title,
    desc,
    width: W,
    height: H,
    body,
    legend: [
      { cls: 'good', label: v.good },
      { cls: 'bad', label: v.bad },
    ],
    table: { caption: v.title, head: ['Hour (UTC)', v.good, v.bad], rows: v.hours.map((h) => [hourLabel(h.start), h.good, h.bad]) },
  });
}
