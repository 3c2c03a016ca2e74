import { escapeHtml } from '../http/page/html.ts';
import type { Incident } from '../incidents/incidents.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The incidents as an Atom feed (RFC 4287) for subscribers: one entry per
 * incident, updated whenever the incident is, with its updates as content.
 */
export function incidentsFeed(options: { selfUrl: string; pageUrl: string; title: string; incidents: Incident[]; now: number }): string {
  const { incidents } = options;
  const updated = incidents.reduce((latest, i) => Math.max(latest, i.updatedAt), 0) || options.now;
  const entries = incidents.map((i) => {
    const state = i.endedAt === null ? `ongoing since ${iso(i.startedAt)}` : `resolved ${iso(i.endedAt)}`;
    const lines = [
      i.advice,
      state,
      ...(i.expectedEndAt !== null && i.endedAt === null ? [`expected to be over by ${iso(i.expectedEndAt)}`] : []),
      ...i.updates.map((u) => `${iso(u.at)}: ${u.text}`),
    ];
    return `<entry>
<id>urn:steadfast:incident:${escapeHtml(i.id)}</id>
<title>${escapeHtml(`${i.endedAt === null ? '' : '[Resolved] '}${i.title}`)}</title>
<updated>${iso(i.updatedAt)}</updated>
<published>${iso(i.startedAt)}</published>
<category term="${escapeHtml(i.component)}"/>
<link rel="alternate" href="${escapeHtml(options.pageUrl)}"/>
<content type="text">${escapeHtml(lines.join('\n'))}</content>
</entry>`;
  });
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<id>${escapeHtml(options.selfUrl)}</id>
<title>${escapeHtml(options.title)}</title>
<updated>${iso(updated)}</updated>
<link rel="self" href="${escapeHtml(options.selfUrl)}"/>
<link rel="alternate" href="${escapeHtml(options.pageUrl)}"/>
<author><name>Steadfast</name></author>
${entries.join('\n')}
</feed>
`;
}
