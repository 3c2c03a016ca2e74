import type { FastifyInstance } from 'fastify';

/** One route the app serves, as registered. */
export interface RouteEntry {
  method: string;
  /** With Fastify's parameters, e.g. `/t/:tenant/admin/users/:id`. */
  url: string;
}

const tables = new WeakMap<object, RouteEntry[]>();

/**
 * Every route of an app, read from Fastify as the routes are registered: the
 * scope walks in the tests go through all of them, so a route added later is
 * walked without a list to keep in step. Call before registering routes.
 */
// Any server, logger and type provider: only the route hook is used.
export function recordRoutes(app: FastifyInstance<any, any, any, any, any>): RouteEntry[] {
  const table: RouteEntry[] = [];
  tables.set(app, table);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') table.push({ method, url: route.url });
  });
  return table;
}

/** The routes `recordRoutes` saw for this app (empty if it was not called). */
export function routeTable(app: object): readonly RouteEntry[] {
  return tables.get(app) ?? [];
}
