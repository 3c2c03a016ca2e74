// `npm run bench -- NAME`: runs bench/NAME.ts, which prints its figures and the
// reference they are measured against in the same run.
const BENCHES = ['signin', 'webauthn', 'overload', 'delivery', 'data', 'outage', 'hash-priority'];

const name = process.argv[2];
if (!name || !BENCHES.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${BENCHES.join('|')}>\n`);
  process.exit(2);
}
await import(`./${name}.ts`);
