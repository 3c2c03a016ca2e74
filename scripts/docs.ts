// Regenerates the documents derived from code: docs/errors.md, docs/openapi.json and docs/code-map.md.
import { writeFileSync } from 'node:fs';
import { renderErrorsDoc } from '../src/errors/errors-doc.ts';
import { renderOpenApi } from '../src/server/openapi.ts';
import { renderCodeMap } from './code-map.ts';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
writeFileSync(new URL('../docs/openapi.json', import.meta.url), await renderOpenApi());
writeFileSync(new URL('../docs/code-map.md', import.meta.url), renderCodeMap());
process.stdout.write('wrote docs/errors.md, docs/openapi.json and docs/code-map.md\n');
