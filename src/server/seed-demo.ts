import type { Config } from '../config/config.ts';
import { randomBase32 } from '../crypto/random.ts';
import type { Services } from './services.ts';

/**
 * On an empty store, creates tenant "demo" with user "demo" and prints how to
 * sign in. The password goes to the console once and nowhere else (not to
 * the log), so it is known only to whoever started the server.
 */
export async function seedDemo(services: Services, config: Readonly<Config>, print: (line: string) => void): Promise<void> {
  if ((await services.tenants.count()) > 0) return;
  let tenant;
  try {
    tenant = await services.tenants.create('demo', 'Steadfast Demo');
  } catch (err) {
    // Nodes of a new cluster started together: another one seeded first.
    if ((await services.tenants.count()) > 0) return;
    throw err;
  }
  const password = randomBase32(16)
    .toLowerCase()
    .replace(/(.{4})(?!$)/g, '$1-');
  // The demo user administers the demo tenant, so the console can be tried at once.
  await services.users.create(tenant.id, { username: 'demo', passwordHash: await services.hasher.hash(password), isAdmin: true });
  print('');
  print('  Steadfast is ready. A demo tenant and user were created:');
  print(`    sign in at  ${config.publicUrl}/t/demo/signin`);
  print('    username    demo');
  print(`    password    ${password}   (shown this once; keep it)`);
  print('  You will be asked to add an authenticator app at first sign-in.');
  print(`    admin console          ${config.publicUrl}/t/demo/admin`);
  print(`    OpenID Connect issuer  ${config.publicUrl}/t/demo  (register apps in the console's API: POST /api/v1/admin/apps)`);
  print('');
}
