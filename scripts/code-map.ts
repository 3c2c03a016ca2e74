// Renders docs/code-map.md: every module under src/, by folder, with the first
// sentence of the doc comment on its main export. Derived from the code, so the
// map cannot drift; `npm run docs` rewrites it and a test checks it is current.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** What each folder is for, and its layer (the rules are in .dependency-cruiser.cjs). */
const FOLDERS: Record<string, string> = {
  src: 'core: the clock and the package root',
  'src/errors': 'core: the problem catalog and the error type every layer throws',
  'src/crypto': 'core: key ring, keyed hashes, randomness',
  'src/net': 'core: small network helpers',
  'src/store': 'store: reading records back safely',
  'src/store/durable': 'store: the durable store (Kysely on SQLite or PostgreSQL), its schema and migrations',
  'src/store/durable/migrations': 'store: one file per schema change, applied in order',
  'src/store/ephemeral': 'store: the ephemeral store (memory, Redis, or the durable store and memory while Redis is away) for flows, codes and counters',
  'src/store/fallback': 'store: the sealed local snapshot and journal that keep sign-in going while the database is down',
  'src/directory': 'domain: tenants, users, passwords, policies, apps, admin tokens',
  'src/methods': 'domain: the authentication methods, their descriptors and the registry',
  'src/sessions': 'domain: sessions, registration tokens, remembered browsers',
  'src/signin': 'domain: the sign-in state machine and its limits',
  'src/activity': 'domain: sign-in events, reports, the audit chain',
  'src/delivery': 'domain: out-of-band channels and provider failover',
  'src/delivery/providers': 'domain: one file per vendor',
  'src/admission': 'domain: load shedding by class, bulkheads',
  'src/cluster': 'domain: membership, capacity and headroom',
  'src/retention': 'domain: sweeping data past its retention',
  'src/backup': 'domain: backups of the embedded store',
  'src/config': 'domain: configuration, validated whole at start',
  'src/status': 'web: metrics, the status pages, uptime bars and feeds',
  'src/incidents': 'domain: incidents (automatic and posted by administrators) and 90-day uptime per component',
  'src/http': 'web: what every HTTP surface shares (authentication, problems, CSRF, headers)',
  'src/http/page': 'web: the page kit (html, layout, form routes)',
  'src/http/page/parts': 'web: partials every page uses',
  'src/portal': 'web: end-user pages',
  'src/portal/views': 'web: end-user pages as pure functions from typed data to HTML',
  'src/portal/views/parts': 'web: partials of the end-user pages',
  'src/portal/routes': 'web: end-user page handlers (parse, call one service, render)',
  'src/admin': 'web: the admin API and console',
  'src/admin/api': 'web: the admin API, one file a resource (`admin-api.ts` registers them)',
  'src/admin/views': 'web: console pages as pure functions',
  'src/admin/routes': 'web: console page handlers',
  'src/admin/views/parts': 'web: partials of the console pages',
  'src/admin/views/charts': 'web: charts drawn server-side as SVG (no script, no CDN)',
  'src/oidc': 'web: the OpenID Connect provider',
  'src/server': 'root: the composition root and the HTTP app',
  'src/server/routes': 'root: JSON API route modules',
  'src/cli': 'root: the `steadfast` command',
  'src/loadtest': 'root: the load generator behind `steadfast loadtest`',
  'src/client': 'the typed client apps import (`steadfast/client`); imports nothing of the server',
};

function describeFolder(folder: string): string {
  const described = FOLDERS[folder];
  if (described) return described;
  // Each method is a folder of its own (DESIGN.md: one folder and one registry line).
  const method = /^src\/methods\/([a-z-]+)$/.exec(folder)?.[1];
  if (method) return `domain: the \`${method}\` method: its descriptor, implementation and module (\`index.ts\`, listed in the registry)`;
  return '(not yet described: add it to scripts/code-map.ts)';
}

function modules(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return modules(path);
      return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
    });
}

const pascal = (file: string) => file.replace(/\.ts$/, '').replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());

const clean = (comment: string) =>
  comment
    .split('\n')
    .map((line) => line.replace(/^\s*\*\s?/, '').trim())
    .filter((line) => !line.startsWith('@'))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();

/** The first sentence (at most ~200 characters) of a comment. */
function firstSentence(text: string): string {
  const sentence = /^(.*?[.?!])(\s|$)/.exec(text)?.[1] ?? text;
  return (sentence.length > 200 ? `${sentence.slice(0, 197).replace(/\s+\S*$/, '')}…` : sentence).replace(/\|/g, '\\|');
}

/**
 * What a module is, from its doc comments: a comment that opens the file
 * (before its imports); else the one on the export named after the file; else
 * the one on the first documented class or function; else on the first export.
 */
export function summaryOf(source: string, fileName: string): string {
  const documented = [
    ...source.matchAll(/\/\*\*([\s\S]*?)\*\/\s*export\s+(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(const|function|class|interface|type|enum)\s+(\w+)/g),
  ];
  const wanted = pascal(fileName).toLowerCase();
  const opening = /^\s*\/\*\*([\s\S]*?)\*\/\s*(?:import|\/\/|$)/.exec(source) ?? /^\s*((?:\/\/.*\n)+)/.exec(source);
  const named = documented.find((m) => m[3]!.toLowerCase() === wanted);
  const chosen =
    (opening ? opening[1]!.replace(/^\s*\/\/ ?/gm, '') : undefined) ??
    named?.[1] ??
    documented.find((m) => m[2] === 'class' || m[2] === 'function')?.[1] ??
    documented[0]?.[1];
  return chosen ? firstSentence(clean(chosen)) : '';
}

export function renderCodeMap(): string {
  const byFolder = new Map<string, string[]>();
  for (const path of modules(join(root, 'src'))) {
    const rel = relative(root, path);
    const folder = rel.slice(0, rel.lastIndexOf('/'));
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), rel]);
  }
  const lines = [
    '# Code map',
    '',
    'Every module under `src/`, by folder, with the first sentence of the doc comment on its main export.',
    'Generated by `npm run docs` from the code (`scripts/code-map.ts`); a test fails when it is out of date.',
    'The layers and the rules between them are in [architecture.md](architecture.md) and `.dependency-cruiser.cjs`.',
    '',
  ];
  for (const [folder, files] of [...byFolder].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`## \`${folder}/\``, '', describeFolder(folder), '', '| module | what it is |', '|---|---|');
    for (const file of files) {
      const name = file.slice(folder.length + 1);
      lines.push(`| \`${name}\` | ${summaryOf(readFileSync(join(root, file), 'utf8'), name) || '—'} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
