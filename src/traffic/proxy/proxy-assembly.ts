// A whole proxy from a validated configuration: the ProxyServer with its pool source, load
// shedding for the pools with a `shed:` section, and the rates the autoscaler reads on /backends.
// With `proxy.store` (or --store) the pools, health results, drains and instances come from the
// coordination store instead of the file (store-feed.ts); otherwise from the file.
//
// `concord proxy` runs this; so does `concord up` (with the store it hosts) and the tests.

import type { ConcordConfig } from '../../control/config.ts';
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
  const extensions: ProxyExtension[] = [admissions, rates];
  try {
    proxy = await ProxyServer.start({
      settings: config.proxy, source, admission: admissions, extensions, runHealthChecks: feed === undefined,
      ...(options.log === undefined ? {} : { log: options.log }), ...(options.seed === undefined ? {} : { seed: options.seed }),
    });
  } catch (error) {
    stopFollowing();
    admissions.close();
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
      stopFollowing();
      admissions.close();
      await feed?.stop();
    },
  };
}
