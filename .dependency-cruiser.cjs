/**
 * The layers of src/ and the rules between them (docs/architecture.md):
 *
 *   core     clock.ts, errors/, crypto/, net/       depends on nothing else
 *   store    store/                                 on core
 *   domain   directory/, methods/, sessions/, signin/, activity/, delivery/,
 *            admission/, cluster/, retention/, backup/, config/, incidents/, status/metrics
 *                                                   on core, store, each other (no cycles)
 *   web      http/ (the shared web layer: auth, the page kit, problems),
 *            portal/, admin/, oidc/, status/ pages  on domain; portal, admin and oidc never on each other
 *   client   client/: the types of http/api-schemas.ts only
 *   root     server/ (the composition root), cli/, loadtest/
 *                                                   on anything; nothing depends on them
 *
 * `npm run lint` runs these rules; a type-only import counts as much as any other.
 */
const DOMAIN = '^src/(directory|methods|sessions|signin|activity|delivery|admission|cluster|retention|backup|config|incidents)/';
const WEB = '^src/(http|portal|admin|oidc)/';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No module depends on itself through others, types included.', from: { path: '^src' }, to: { circular: true, path: '^src' } },
    {
      name: 'core-depends-on-nothing',
      severity: 'error',
      from: { path: '^src/(clock\\.ts|errors/|crypto/|net/)' },
      to: { path: '^src/', pathNot: '^src/(clock\\.ts|errors/|crypto/|net/)' },
    },
    { name: 'store-on-core-only', severity: 'error', from: { path: '^src/store/' }, to: { path: '^src/', pathNot: '^src/(clock\\.ts|errors/|crypto/|net/|store/)' } },
    { name: 'domain-not-on-web', severity: 'error', comment: 'The domain knows nothing of HTTP.', from: { path: DOMAIN }, to: { path: [WEB, '^src/(server|cli|loadtest|portal|status)/'] } },
    { name: 'domain-not-on-fastify', severity: 'error', from: { path: DOMAIN }, to: { path: 'node_modules/(fastify|@fastify/)' } },
    { name: 'http-is-shared', severity: 'error', comment: 'http/ is what portal, admin and oidc share: it depends on none of them.', from: { path: '^src/http/' }, to: { path: '^src/(portal|admin|oidc|server|cli|loadtest)/' } },
    { name: 'portal-alone', severity: 'error', from: { path: '^src/portal/' }, to: { path: '^src/(admin|oidc|server|cli|loadtest)/' } },
    { name: 'admin-alone', severity: 'error', from: { path: '^src/admin/' }, to: { path: '^src/(portal|oidc|server|cli|loadtest)/' } },
    { name: 'oidc-alone', severity: 'error', from: { path: '^src/oidc/' }, to: { path: '^src/(portal|admin|server|cli|loadtest)/' } },
    { name: 'nothing-on-the-root', severity: 'error', comment: 'Only the root composes: no module reaches back into server/ or cli/.', from: { path: '^src/', pathNot: '^src/(server|cli)/' }, to: { path: '^src/(server|cli)/' } },
    {
      name: 'client-stands-alone',
      severity: 'error',
      comment: 'steadfast/client ships to apps: it imports nothing of the server but the types of the API schemas.',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/(client/|http/api-schemas\\.ts$)' },
    },
    {
      name: 'client-takes-schema-types-only',
      severity: 'error',
      comment: 'The API schemas give the client its types (Static); no server code may ship with it.',
      from: { path: '^src/client/' },
      to: { path: '^src/http/api-schemas\\.ts$', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
