import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderErrorsDoc } from '../../src/errors/errors-doc.ts';
import { renderOpenApi } from '../../src/server/openapi.ts';
import { problemCatalog } from '../../src/errors/catalog.ts';
import { renderCodeMap } from '../../scripts/code-map.ts';

describe('documents derived from code', () => {
  it('docs/errors.md lists every problem type of the catalog (run `npm run docs` after changing it)', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderErrorsDoc());
    for (const [code, { status }] of Object.entries(problemCatalog)) expect(doc).toContain(`| \`${code}\` | ${status} |`);
  });

  it('docs/openapi.json is the document the routes generate (run `npm run docs`)', async () => {
    const doc = readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8');
    expect(JSON.parse(doc)).toEqual(JSON.parse(await renderOpenApi()));
    const paths = Object.keys(JSON.parse(doc).paths);
    expect(paths).toEqual(
      expect.arrayContaining(['/api/v1/t/{tenant}/signin', '/api/v1/t/{tenant}/signin/{flow}/verify', '/api/v1/me/methods', '/healthz', '/readyz']),
    );
  });

  it('docs/code-map.md lists every module under src/ with what it is (run `npm run docs`)', () => {
    const doc = readFileSync(new URL('../../docs/code-map.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderCodeMap());
    // Every folder is described, and every module says what it is in a doc comment.
    expect(doc).not.toContain('(not yet described');
    expect(doc.split('\n').filter((line) => line.endsWith('| — |'))).toEqual([]);
  });
});
