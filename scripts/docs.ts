// Regenerates the documents derived from code: docs/errors.md and docs/openapi.json.
import { writeFileSync } from 'node:fs';
import { renderErrorsDoc } from '../src/errors/errors-doc.ts';
import { renderOpenApi } from '../src/server/openapi.ts';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
writeFileSync(new URL('../docs/openapi.json', import.meta.url), await renderOpenApi());
process.stdout.write('wrote docs/errors.md and docs/openapi.json\n');
