/** The routes an app has, by path, for the Allow header of a 405 (a known path, another method). */
import type { FastifyInstance } from 'fastify';

/** A registered route path as a pattern: ':name' one segment, '*' anything. */
function routePattern(url: string): RegExp {
  const source = url.split('/').map((segment) => {
    if (segment.startsWith(':')) return '[^/]+';
    return segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  }).join('/');
  return new RegExp(`^${source}/?$`);
}

/** The methods each route path answers (catch-all routes, such as a CORS preflight's, left out). */
export type RouteTable = Map<string, { pattern: RegExp; methods: Set<string> }>;

/** The methods a path answers to, for the Allow header of a 405 ('' when no route has the path). */
export function allowedMethods(routes: RouteTable, path: string): string {
  const methods = new Set<string>();
  for (const { pattern, methods: m } of routes.values()) if (pattern.test(path)) for (const one of m) methods.add(one);
  return [...methods].sort().join(', ');
}

/** Records every route the app gets from now on (catch-all routes, such as a CORS preflight's, left out). */
export function trackRoutes(app: FastifyInstance): RouteTable {
  const routes: RouteTable = new Map();
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || route.url === '/*') return;
    const entry = routes.get(route.url) ?? { pattern: routePattern(route.url), methods: new Set<string>() };
    for (const method of [route.method].flat()) entry.methods.add(method);
    routes.set(route.url, entry);
  });
  return routes;
}
