import { html, type SafeHtml } from '../http/page/html.ts';
import type { UptimeDay } from '../incidents/uptime.ts';

const BAR_W = 3;
const GAP = 1;
const HEIGHT = 24;

/** Colour and words for one day: drawn and also said (title), so the bar does not rely on colour alone. */
function dayLook(down: number): { fill: string; words: string } {
  if (down === 0) return { fill: '#2e7d32', words: 'no incidents' };
  if (down < 0.01) return { fill: '#f9a825', words: 'under 15 minutes of trouble' };
  if (down < 0.1) return { fill: '#ef6c00', words: `${Math.round(down * 24 * 60)} minutes of trouble` };
  return { fill: '#c62828', words: `${(down * 24).toFixed(1)} hours of trouble` };
}

/**
 * A component's last 90 days as an inline SVG bar, one rect a day, drawn on
 * the server: no script, no CDN, and it passes the page's strict CSP.
 */
export function uptimeBar(label: string, days: UptimeDay[]): SafeHtml {
  const width = days.length * (BAR_W + GAP);
  const upShare = days.length === 0 ? 1 : 1 - days.reduce((n, d) => n + d.down, 0) / days.length;
  const summary = `${label}: ${(upShare * 100).toFixed(2)}% of the last ${days.length} days without incidents`;
  return html`<figure class="uptime"><svg role="img" aria-label="${summary}" width="${String(width)}" height="${String(HEIGHT)}" viewBox="0 0 ${String(width)} ${String(HEIGHT)}" xmlns="http://www.w3.org/2000/svg">${days.map(
    (d, i) => {
      const look = dayLook(d.down);
      return html`<rect x="${String(i * (BAR_W + GAP))}" y="0" width="${String(BAR_W)}" height="${String(HEIGHT)}" fill="${look.fill}"><title>${new Date(d.day).toISOString().slice(0, 10)}: ${look.words}</title></rect>`;
    },
  )}</svg><figcaption>${summary}</figcaption></figure>`;
}
