// A whole proxy from a validated configuration: the ProxyServer with its pool source, load
// shedding for the pools with a `shed:` section, and the rates the autoscaler reads on /backends.
// With `proxy.store` (or --store) the pools, health results, drains and instances come from the
// coordination store instead of the file (store-feed.ts); otherwise from the file.
//
// `concord proxy` runs this; so does `concord up` (with the store it hosts) and the tests.

import { AdminAuthenticator, identityStoreOf } from '../../control/admin-auth.ts';
import type { ConcordConfig } from '../../control/config.ts';
import { CONFIG_KEY, drainKey } from '../../control/store-keys.ts';
import type { CoordStore } from '../../coord/coord-store.ts';
import type { AccessLog } from './access-log.ts';
import { PoolAdmissions } from './pool-admissions.ts';
import { StaticPoolSource, type PoolSource } from './pool-source.ts';
import { ProxyServer, type ProxyExtension } from './proxy-server.ts';
import { StoreFeed, type StoreFeedOptions } from './store-feed.ts';
import { TrafficRates } from './traffic-rates.ts';

export interface AssembledProxyOptions {
  config: ConcordConfig;
  log?: AccessLog;
  seed?: number;
  /** Feed the proxy from this store (the caller owns it and closes it after stop()). */
  store?: CoordStore;
  /** Store-fed proxies only: tuning and names (tests shorten the intervals). */
  feed?: Omit<StoreFeedOptions, 'store' | 'settings'>;
}

export interface AssembledProxy {
  readonly proxy: ProxyServer;
  readonly admissions: PoolAdmissions;
  readonly feed: StoreFeed | undefined;
  /** Drains (up to `deadlineMs`, default proxy.shutdownDrainMs) and stops everything started here. */
  stop(deadlineMs?: number): Promise<void>;
}

export async function startAssembledProxy(options: AssembledProxyOptions): Promise<AssembledProxy> {
  const { config } = options;
  let proxy: ProxyServer | undefined;
  const admissions = new PoolAdmissions({ onEvent: (event) => proxy?.recordEvent(event) });
  let source: PoolSource;
  let feed: StoreFeed | undefined;
  if (options.store === undefined) {
    source = new StaticPoolSource({ pools: config.pools, routes: config.routes });
  } else {
    feed = new StoreFeed({ ...options.feed, store: options.store, settings: config.proxy });
    await feed.start();
    source = feed.poolSource;
  }
  admissions.setPools(source.current().pools);
  const stopFollowing = source.watch((snapshot) => admissions.setPools(snapshot.pools));
  const rates = new TrafficRates(() => proxy, admissions);
  const identities = options.store === undefined ? undefined : identityStoreOf(options.store);
  const adminAuth = identities === undefined ? undefined : new AdminAuthenticator(identities);
  const extensions: ProxyExtension[] = [admissions, rates];
  try {
    proxy = await ProxyServer.start({
      settings: config.proxy, source, admission: admissions, extensions, runHealthChecks: feed === undefined,
      ...(adminAuth === undefined ? {} : { adminGate: async (req, path) => void (await adminAuth.requireWrite(req, keyGuarding(path))) }),
      ...(options.log === undefined ? {} : { log: options.log }), ...(options.seed === undefined ? {} : { seed: options.seed }),
    });
  } catch (error) {
    stopFollowing();
    admissions.close();
    adminAuth?.stop();
    await feed?.stop();
    throw error;
  }
  rates.start();
  await feed?.attach(proxy);
  const started = proxy;
  return {
    proxy: started, admissions, feed,
    stop: async (deadlineMs?: number) => {
      await feed?.detach();
      await started.stop(deadlineMs);
      rates.stop();
      adminAuth?.stop();
      stopFollowing();
      admissions.close();
      await feed?.stop();
    },
  };
}

/**
 * The store key whose write permission a mutating request on this proxy's admin port needs: what
 * the cluster-wide form of the action writes. A drain or undrain: the backend's drain key; anything
 * else (the shed override) changes configuration: the configuration's key.
 */
function keyGuarding(path: string): string {
  const drain = /^\/pools\/([^/]+)\/backends\/([^/]+)\/(?:drain|undrain)$/.exec(path);
  if (drain === null) return CONFIG_KEY;
  return drainKey(decodeURIComponent(drain[1]!), decodeURIComponent(drain[2]!));
}
