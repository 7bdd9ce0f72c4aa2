// Everything `concord up` runs, in one process: a one-member store, the control plane on it, and a
// proxy fed from it. The pieces are the production ones, wired as three machines would wire them
// (the control plane and the proxy reach the store through the etcd v3 API on its client port, not
// through a shortcut), so what works here works in a cluster.
//
// Start order: the store (its data directory reused across runs), the configuration file applied
// to it when it changed, the control plane (health checks, autoscaler, timeline, dashboard), then
// the proxy. Stop order is the reverse, so nothing is cut off while something still depends on
// it: the proxy drains its in-flight requests, the control plane stops the autoscaler (which stops
// the example backends it started), then the store stops.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { applyConfig, digestOf, readAppliedConfig, validateConfigText } from '../control/config-store.ts';
import { ConfigError, validateConfig, type ConcordConfig } from '../control/config.ts';
import { ControlPlane } from '../control/plane.ts';
import type { StaticFilesHandler } from '../control/admin-api.ts';
import type { StoreCredentials } from '../coord/store-auth.ts';
import { EtcdCoordStore } from '../coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../coord/store-url.ts';
import { readConfigFileText } from '../server/config-file.ts';
import { resolveServerConfig, settingsFromFlags } from '../server/server-config.ts';
import { StoreServer } from '../server/store-server.ts';
import { AccessLog } from '../traffic/proxy/access-log.ts';
import { startAssembledProxy, type AssembledProxy } from '../traffic/proxy/proxy-assembly.ts';
import { advertisedAddress } from '../traffic/proxy/store-feed.ts';

export interface UpLogger {
  info(component: string, message: string): void;
  warn(component: string, message: string): void;
}

export interface EmbeddedSystemOptions {
  /** The configuration file (examples/concord.yaml by default). */
  configFile: string;
  /** The store's data under <dataDir>/store, the proxy's access log in <dataDir>/access.log. */
  dataDir: string;
  /** host:port of the store's client (etcd v3 API) and peer listeners. */
  storeListen: string;
  peerListen: string;
  /** Overrides of proxy.listen, proxy.admin and controlPlane.admin. */
  proxyListen?: string;
  proxyAdmin?: string;
  admin?: string;
  /** Who applies the configuration (recorded in the config-applied event). */
  operator: string;
  staticFiles?: StaticFilesHandler;
  logger: UpLogger;
  /** The store user the control plane and the proxy act as (needed once the store has authentication on). */
  credentials?: StoreCredentials;
}

/** Where each part listens once started. */
export interface SystemAddresses {
  proxyUrl: string;
  proxyAdminUrl: string;
  dashboardUrl: string;
  storeEndpoint: string;
  dataDir: string;
  accessLogFile: string;
}

/** The member's name: one member, so one name; it appears in events and in `etcdctl member list`. */
const MEMBER_NAME = 'up';
/** A store-fed proxy's registration name. */
const PROXY_NAME = 'up-proxy';

export class EmbeddedSystem {
  readonly addresses: SystemAddresses;
  readonly plane: ControlPlane;
  private readonly server: StoreServer;
  private readonly planeStore: EtcdCoordStore;
  private readonly proxyStore: EtcdCoordStore;
  private readonly proxy: AssembledProxy;
  private readonly accessLog: AccessLog;
  private stopping: Promise<void> | undefined;

  private constructor(parts: { addresses: SystemAddresses; server: StoreServer; plane: ControlPlane; planeStore: EtcdCoordStore; proxyStore: EtcdCoordStore; proxy: AssembledProxy; accessLog: AccessLog }) {
    this.addresses = parts.addresses;
    this.server = parts.server;
    this.plane = parts.plane;
    this.planeStore = parts.planeStore;
    this.proxyStore = parts.proxyStore;
    this.proxy = parts.proxy;
    this.accessLog = parts.accessLog;
  }

  /** Starts every part; on failure, stops what started and throws (a ConfigError for a bad file). */
  static async start(options: EmbeddedSystemOptions): Promise<EmbeddedSystem> {
    const { logger } = options;
    const text = readConfigFile(options.configFile);
    const config = validateConfigText(text, options.configFile);
    const proxyConfig = proxySettingsOf(config, options);
    mkdirSync(options.dataDir, { recursive: true });
    const started: (() => Promise<void>)[] = [];
    const undo = async () => {
      for (const stop of started.reverse()) await stop().catch(() => undefined);
    };
    try {
      const server = await StoreServer.start(resolveServerConfig({}, settingsFromFlags({
        name: MEMBER_NAME, dataDir: join(options.dataDir, 'store'),
        listenClientUrls: `http://${options.storeListen}`, listenPeerUrls: `http://${options.peerListen}`,
      })), { logger: { info: (text) => logger.info('store', text), warn: (text) => logger.warn('store', text), error: (text) => logger.warn('store', text) } });
      started.push(() => server.stop());
      const storeEndpoint = server.clientAddresses[0]!;
      const identity = options.credentials === undefined ? {} : { credentials: options.credentials };
      const planeStore = new EtcdCoordStore(parseStoreLocation(`etcd://${storeEndpoint}`), identity);
      const proxyStore = new EtcdCoordStore(parseStoreLocation(`etcd://${storeEndpoint}`), identity);
      started.push(async () => {
        planeStore.close();
        proxyStore.close();
      });
      await applyIfChanged(planeStore, text, options);
      // The proxy starts after the control plane, which serves its metrics from then on.
      const hosted: { proxy?: AssembledProxy } = {};
      const plane = await ControlPlane.start({
        store: planeStore, cluster: planeStore.cluster, name: MEMBER_NAME,
        ...(options.admin === undefined ? {} : { admin: options.admin }),
        ...(options.staticFiles === undefined ? {} : { staticFiles: options.staticFiles }),
        hostedMetrics: [() => server.metrics.registry.metrics(), () => hosted.proxy?.proxy.metricsText() ?? Promise.resolve('')],
        logger: { info: (text) => logger.info('control', text), warn: (text) => logger.warn('control', text) },
      });
      started.push(() => plane.stop());
      const accessLogFile = join(options.dataDir, 'access.log');
      const accessLog = new AccessLog(pino.destination({ dest: accessLogFile, sync: false, mkdir: true, minLength: 4096 }));
      const proxy = await startAssembledProxy({
        config: proxyConfig, store: proxyStore, log: accessLog,
        feed: { onNotice: (message) => logger.info('proxy', message) },
      });
      hosted.proxy = proxy;
      const addresses: SystemAddresses = {
        proxyUrl: `http://${advertisedAddress(proxy.proxy.trafficAddress)}`,
        proxyAdminUrl: `http://${advertisedAddress(proxy.proxy.adminAddress)}`,
        dashboardUrl: `${plane.adminUrl}/`,
        storeEndpoint, dataDir: options.dataDir, accessLogFile,
      };
      return new EmbeddedSystem({ addresses, server, plane, planeStore, proxyStore, proxy, accessLog });
    } catch (error) {
      await undo();
      throw error;
    }
  }

  /** Stops in order (idempotent): the proxy drains, the control plane stops the backends, the store stops last. */
  stop(drainDeadlineMs?: number): Promise<void> {
    this.stopping ??= this.stopInOrder(drainDeadlineMs);
    return this.stopping;
  }

  private async stopInOrder(drainDeadlineMs: number | undefined): Promise<void> {
    await this.proxy.stop(drainDeadlineMs).catch(() => undefined);
    this.accessLog.flush();
    await this.plane.stop().catch(() => undefined);
    this.planeStore.close();
    this.proxyStore.close();
    await this.server.stop();
  }
}

function readConfigFile(path: string): string {
  try {
    return readConfigFileText(path);
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (run from Concord's directory, or give --config FILE)`);
  }
}

/** The proxy's own settings: the file's proxy: section with the flags' addresses, fed from the store. */
function proxySettingsOf(config: ConcordConfig, options: EmbeddedSystemOptions): ConcordConfig {
  return validateConfig({
    proxy: {
      ...config.proxy, store: undefined, name: PROXY_NAME, workers: 1,
      ...(options.proxyListen === undefined ? {} : { listen: options.proxyListen }),
      ...(options.proxyAdmin === undefined ? {} : { admin: options.proxyAdmin }),
    },
  }, 'the proxy settings');
}

/**
 * The file is the source of truth for `up`: applied when its text differs from the stored
 * configuration (a first run, or an edit since the last), left alone otherwise, so a restart does
 * not add a config-applied event for nothing.
 */
async function applyIfChanged(store: EtcdCoordStore, text: string, options: EmbeddedSystemOptions): Promise<void> {
  const stored = await readAppliedConfig(store).catch(() => undefined);
  if (stored !== undefined && stored.digest === digestOf(text)) {
    options.logger.info('config', `configuration ${stored.digest} from ${options.configFile} is already applied (revision ${stored.revision})`);
    return;
  }
  const applied = await applyConfig(store, text, { by: `${options.operator} (concord up)`, atMs: Date.now() });
  options.logger.info('config', `applied ${options.configFile} (${applied.digest}) at revision ${applied.revision}`);
}
