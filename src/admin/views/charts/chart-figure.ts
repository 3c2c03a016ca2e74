import { html, type SafeHtml } from '../../../http/page/html.ts';

/** A table of a chart's numbers: its text alternative, and the way to read exact values. */
export interface ChartTable {
  caption: string;
  head: string[];
  rows: (string | number)[][];
}

/**
 * A chart as the console shows it: the SVG, announced as one image by its
 * title and a description that says what it shows in words, and beneath it
 * the same numbers as a table (folded away, for screen readers, keyboards
 * and anyone who wants the figures). `id` makes the SVG's ids unique on the page.
 */
export function chartFigure(v: {
  id: string;
  title: string;
  desc: string;
  width: number;
  height: number;
  body: SafeHtml;
  table: ChartTable;
  legend?: { cls: string; label: string }[];
}): SafeHtml {
  return html`<figure class="chart">
<svg viewBox="0 0 ${v.width} ${v.height}" width="${v.width}" height="${v.height}" role="img" aria-labelledby="${v.id}-title ${v.id}-desc" xmlns="http://www.w3.org/2000/svg" focusable="false">
<title id="${v.id}-title">${v.title}</title>
<desc id="${v.id}-desc">${v.desc}</desc>
${v.body}
</svg>
${v.legend ? html`<ul class="legend" aria-hidden="true">${v.legend.map((l) => html`<li><span class="swatch ${l.cls}"></span>${l.label}</li>`)}</ul>` : ''}
<details><summary>${v.table.caption}: as a table</summary>
<div class="table-scroll"><table>
<caption class="visually-hidden">${v.table.caption}</caption>
<thead><tr>${v.table.head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
<tbody>${v.table.rows.map((r) => html`<tr>${r.map((c, i) => (i === 0 ? html`<th scope="row">${c}</th>` : html`<td>${c}</td>`))}</tr>`)}</tbody>
</table></div></details>
</figure>`;
}

/** A round axis maximum at or above `max`: 1, 2, 5 times a power of ten. */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** A number of something, in words: "1 sign-in", "3 sign-ins". */
export const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
