// Chooses the pool for a request: with one pool, always that pool; with several, the first route
// whose host (exact, or *.example.com for subdomains) and path prefix match.

import type { RouteConfig } from '../../control/config.ts';

interface CompiledRoute {
  readonly exactHost: string | undefined;
  readonly hostSuffix: string | undefined;
  readonly pathPrefix: string;
  readonly pool: string;
}

export class Router {
  private readonly routes: CompiledRoute[];
  private readonly onlyPool: string | undefined;

  constructor(pools: readonly string[], routes: readonly RouteConfig[]) {
    this.onlyPool = routes.length === 0 && pools.length === 1 ? pools[0] : undefined;
    this.routes = routes.map((route) => {
      const host = route.host?.toLowerCase();
      return {
        exactHost: host !== undefined && !host.startsWith('*.') ? host : undefined,
        hostSuffix: host?.startsWith('*.') ? host.slice(1) : undefined,
        pathPrefix: route.pathPrefix,
        pool: route.pool,
      };
    });
  }

  /** The pool's name, or undefined when no route matches. */
  route(hostHeader: string | undefined, path: string): string | undefined {
    if (this.onlyPool !== undefined) return this.onlyPool;
    const host = hostWithoutPort(hostHeader);
    for (const route of this.routes) {
      if (route.exactHost !== undefined && route.exactHost !== host) continue;
      if (route.hostSuffix !== undefined && !(host !== undefined && host.endsWith(route.hostSuffix))) continue;
      if (!path.startsWith(route.pathPrefix)) continue;
      return route.pool;
    }
    return undefined;
  }
}

function hostWithoutPort(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const lower = host.toLowerCase();
  if (lower.startsWith('[')) return lower.slice(0, lower.indexOf(']') + 1);
  const colon = lower.lastIndexOf(':');
  return colon === -1 ? lower : lower.slice(0, colon);
}
