import { html, type SafeHtml } from '../../../http/page/html.ts';
import { chartFigure } from './chart-figure.ts';

const W = 400;
const H = 44;

const percent = (n: number, of: number) => (of === 0 ? 0 : Math.round((n / of) * 100));

/** One bar split into shares of a whole (each part a class, for its colour), with each share's count in the table. */
export function shareBar(v: { id: string; title: string; whole: string; total: number; parts: { label: string; count: number; cls: string }[] }): SafeHtml {
  let x = 0;
  const segments = v.parts.map((p) => {
    const w = v.total === 0 ? 0 : (W * p.count) / v.total;
    const segment = { ...p, x, w };
    x += w;
    return segment;
  });
  const desc = `${v.total} ${v.whole}: ${v.parts.map((p) => `${p.label.toLowerCase()} ${p.count} (${percent(p.count, v.total)}%)`).join('; ')}.`;
  const body = html`${segments.map(
    (s) =>
      html`<rect class="${s.cls}" x="${s.x}" y="4" width="${s.w}" height="${H - 8}"></rect>${s.w >= 40 ? html`<text x="${s.x + s.w / 2}" y="${H / 2 + 5}" text-anchor="middle" class="on-bar">${percent(s.count, v.total)}%</text>` : ''}`,
  )}`;
  return chartFigure({
    id: v.id,
    title: v.title,
    desc,
    width: W,
    height: H,
    body,
    legend: v.parts.map((p) => ({ cls: p.cls, label: `${p.label}: ${p.count}` })),
    table: { caption: v.title, head: ['', 'Users', 'Share'], rows: v.parts.map((p) => [p.label, p.count, `${percent(p.count, v.total)}%`]) },
  });
}
