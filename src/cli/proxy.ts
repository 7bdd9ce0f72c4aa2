// `concord proxy`: runs the load balancer.
//
//   concord proxy --config FILE                 pools, routes and settings from the file
//   concord proxy --store etcd://host:2379,...  pools, routes, health results, drains and instances
//                                               from the coordination store (the applied configuration),
//                                               applied live; a --config file then gives only this
//                                               proxy's own settings (its proxy: section)
//
// SIGTERM or SIGINT drains (stop accepting, finish in-flight requests up to proxy.shutdownDrainMs),
// deregisters from the store, and exits. Exit codes: 0 stopped cleanly; 2 a bad flag or
// configuration; 1 the proxy could not start (an address in use) or failed while stopping.

import type { Command } from 'commander';
import { ConfigError, loadConfigFile, validateConfig, type ConcordConfig, type StoreSettings } from '../control/config.ts';
import type { EtcdCoordStore } from '../coord/etcd-coord-store.ts';
import { startAssembledProxy, type AssembledProxy } from '../traffic/proxy/proxy-assembly.ts';
import { runProxyWorkers } from '../traffic/proxy/workers.ts';
import { AccessLog } from '../traffic/proxy/access-log.ts';
import { openStore, type StoreFlagValues } from './store-flags.ts';

export interface ProxyFlags extends StoreFlagValues {
  config?: string;
  listen?: string;
  admin?: string;
  workers?: string;
  name?: string;
  configCache?: string;
}

/** The config file (or defaults, with only a store) with flag overrides, validated as a whole. */
export function proxyConfigFrom(flags: ProxyFlags): ConcordConfig {
  const storeGiven = flags.store !== undefined || flags.endpoints !== undefined;
  if (flags.config === undefined && !storeGiven) throw new ConfigError('give --config FILE (pools from the file) or --store URL (pools from the coordination store), or both');
  const config = flags.config === undefined ? validateConfig({}) : loadConfigFile(flags.config);
  const fromStore = storeGiven || config.proxy.store !== undefined;
  if (!fromStore && config.pools.length === 0) throw new ConfigError(`config file ${flags.config} has no pools: add a pools: section (see examples/proxy.yaml), or take them from the store with --store URL`);
  const settings = { ...config.proxy };
  if (flags.listen !== undefined) settings.listen = flags.listen;
  if (flags.admin !== undefined) settings.admin = flags.admin;
  if (flags.name !== undefined) settings.name = flags.name;
  if (flags.workers !== undefined) {
    if (!/^\d+$/.test(flags.workers) || Number(flags.workers) < 1 || Number(flags.workers) > 64) throw new ConfigError(`--workers: '${flags.workers}' must be a whole number from 1 to 64`);
    settings.workers = Number(flags.workers);
  }
  if (fromStore && settings.workers > 1) throw new ConfigError('proxy.workers above 1 is not supported with the store yet: run one store-fed proxy process per core instead (each registers on its own)');
  // Flags and the file are checked once more as a whole (an override may be malformed).
  return validateConfig({ ...config, proxy: { ...settings, store: settings.store } });
}

/** The store the flags or the file's proxy.store name; undefined for a file-only proxy. */
function storeFrom(flags: ProxyFlags, settings: StoreSettings | undefined): EtcdCoordStore | undefined {
  if (flags.store !== undefined || flags.endpoints !== undefined) return openStore(flags);
  if (settings === undefined) return undefined;
  const identity = flags.user !== undefined ? { user: flags.user, password: flags.password, passwordFile: flags.passwordFile } : { user: settings.user, passwordFile: settings.passwordFile };
  return openStore({ store: settings.url, cacert: settings.caFile ?? flags.cacert, cert: settings.certFile ?? flags.cert, key: settings.keyFile ?? flags.key, ...identity });
}

export function registerProxyCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('proxy')
    .description('Run the HTTP load balancer: pools from a config file or from the coordination store, balancing, health checks, load shedding, retries, admin API.')
    .option('--config <file>', 'YAML config file (proxy:, pools:, routes:); with --store only its proxy: section is used')
    .option('--store <url>', 'take pools, routes, health results and instances from the coordination store: etcd://host:2379,... (or etcds://)')
    .option('--endpoints <list>', 'the store in etcdctl\'s form: host:port,host:port')
    .option('--cacert <file>', 'CA certificate to verify the store (TLS)')
    .option('--cert <file>', 'client certificate, for stores that require one')
    .option('--key <file>', 'the client certificate\'s key')
    .option('--user <name[:password]>', 'the store user to act as, when the store has authentication on (or proxy.store.user)')
    .option('--password <password>', 'the user\'s password (visible in ps: prefer --password-file)')
    .option('--password-file <file>', 'a file holding the user\'s password (or proxy.store.passwordFile)')
    .option('--listen <host:port>', 'override proxy.listen')
    .option('--admin <host:port>', 'override proxy.admin')
    .option('--name <name>', 'this proxy\'s name in the store (default: host-pid)')
    .option('--config-cache <file>', 'with the store: keep the last configuration here, and serve it when the store is unreachable at start')
    .option('--workers <n>', 'override proxy.workers (processes sharing the listen port; file-only proxies)')
    .action(async (flags: ProxyFlags) => {
      let config: ConcordConfig;
      let store: EtcdCoordStore | undefined;
      try {
        config = proxyConfigFrom(flags);
        store = storeFrom(flags, config.proxy.store);
      } catch (error) {
        const known = error instanceof ConfigError || String((error as { code?: unknown }).code ?? '').startsWith('CONCORD_E_');
        process.stderr.write(`concord proxy: ${known ? '' : 'unexpected error: '}${(error as Error).message}\n`);
        setExitCode(2);
        return;
      }
      if (config.proxy.workers > 1) {
        // The primary forks workers that run this same command; each knows its role from node:cluster.
        setExitCode(await runProxyWorkers(config));
        return;
      }
      setExitCode(await runSingleProcess(config, store, flags.configCache));
    });
}

async function runSingleProcess(config: ConcordConfig, store: EtcdCoordStore | undefined, cacheFile: string | undefined): Promise<number> {
  const log = new AccessLog();
  let running: AssembledProxy;
  try {
    running = await startAssembledProxy({
      config, log, ...(store === undefined ? {} : { store }),
      feed: { ...(cacheFile === undefined ? {} : { cacheFile }), onNotice: (message, fields) => log.notice(message, fields ?? {}) },
    });
  } catch (error) {
    store?.close();
    process.stderr.write(`concord proxy: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  const proxy = running.proxy;
  proxy.log.notice('proxy started', {
    listen: config.proxy.listen, admin: config.proxy.admin, pools: proxy.poolNames(),
    ...(store === undefined ? {} : { store: store.describe(), name: running.feed?.name }),
  });
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      proxy.log.notice(`${signal} received: draining`, { inFlight: proxy.requestsInFlight, deadlineMs: config.proxy.shutdownDrainMs });
      running.stop().then(() => {
        store?.close();
        resolve(0);
      }, (error: unknown) => {
        store?.close();
        process.stderr.write(`concord proxy: error while stopping: ${(error as Error).message}\n`);
        resolve(1);
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}
