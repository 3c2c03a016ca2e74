import { html, type SafeHtml } from '../../../http/page/html.ts';
import { chartFigure, niceMax } from './chart-figure.ts';

const W = 400;
const ROW = 28;
const LABEL = 180;

/** Horizontal bars, one per item, labelled and counted in the drawing itself; most first. */
export function barListChart(v: { id: string; title: string; items: { label: string; count: number }[]; cls: string; what: string }): SafeHtml {
  const max = niceMax(Math.max(...v.items.map((i) => i.count)));
  const height = v.items.length * ROW + 4;
  const scale = (n: number) => ((W - LABEL - 48) * n) / max;
  const total = v.items.reduce((s, i) => s + i.count, 0);
  const desc = `${total} ${v.what} in the last 24 hours: ${v.items.map((i) => `${i.label} ${i.count}`).join('; ')}.`;
  const body = html`${v.items.map(
    (item, row) => html`<g transform="translate(0 ${row * ROW})">
<text x="${LABEL - 8}" y="18" text-anchor="end" class="label">${item.label.length > 22 ? `${item.label.slice(0, 21)}…` : item.label}</text>
<rect class="${v.cls}" x="${LABEL}" y="5" height="18" width="${Math.max(2, scale(item.count))}"></rect>
<text x="${LABEL + Math.max(2, scale(item.count)) + 6}" y="18" class="value">${item.count}</text>
</g>`,
  )}`;
  return chartFigure({
    id: v.id,
    title: v.title,
    desc,
    width: W,
    height,
    body,
    table: { caption: v.title, head: ['', 'Count'], rows: v.items.map((i) => [i.label, i.count]) },
  });
}
