// `concord server`: runs one member of the coordination store, with etcd's flag names, and the
// control plane next to it (health checks shared with the other members, the autoscaler, the event
// timeline, the admin API and dashboard; src/control/plane.ts), unless --no-control-plane.

import { Option } from 'commander';
import type { Command } from 'commander';
import { ControlPlane } from '../control/plane.ts';
import { EtcdCoordStore } from '../coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../coord/store-url.ts';
import type { StoreCredentials } from '../coord/store-auth.ts';
import { credentialsFrom } from '../coord/store-credentials.ts';
import { ConfigError, SERVER_SETTINGS, resolveServerConfig, settingsFromFile, settingsFromFlags, type ServerConfig } from '../server/server-config.ts';
import { StoreServer } from '../server/store-server.ts';

function camelFlag(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

export function registerServerCommand(program: Command, setExitCode: (code: number) => void): void {
  const command = program
    .command('server')
    .description('Run a member of the coordination store (speaks the etcd v3 API; takes etcd\'s flag names).')
    .option('--config-file <path>', 'YAML config file; its server: section holds the same settings (flags win)');
  for (const spec of SERVER_SETTINGS) command.option(`--${spec.flag} <value>`, spec.description);
  command.option('--no-control-plane', 'run the store member only (no health checks, autoscaler, timeline or admin API here)');
  command.option('--control-plane-user <name>', 'the store user the control plane acts as, once the store has authentication on (with --control-plane-password-file)');
  command.option('--control-plane-password-file <file>', 'a file holding the control plane user\'s password');
  command.option('--control-plane-admin <host:port>', 'the control plane\'s admin API and dashboard address instead of controlPlane.admin (127.0.0.1:7070); port 0 picks a free one');
  // Deliberate defects, so `concord chaos` can prove it catches them; hidden from --help.
  command.addOption(new Option('--bug <name>', 'switch on a deliberate defect (testing only)').argParser(collect).hideHelp());
  command.action(async (options: Record<string, string | undefined> & { bug?: string[]; controlPlane?: boolean; controlPlaneAdmin?: string; controlPlaneUser?: string; controlPlanePasswordFile?: string }) => {
    const flags: Record<string, string | undefined> = {};
    for (const spec of SERVER_SETTINGS) flags[spec.key] = options[camelFlag(spec.flag)];
    let server: StoreServer;
    let config: ServerConfig;
    let removed: () => void = () => {};
    const whenRemoved = new Promise<void>((resolve) => {
      removed = resolve;
    });
    let credentials: StoreCredentials | undefined;
    try {
      credentials = credentialsFrom({ user: options.controlPlaneUser, passwordFile: options.controlPlanePasswordFile });
      config = resolveServerConfig(options.configFile ? settingsFromFile(options.configFile) : {}, settingsFromFlags(flags), options.bug ?? []);
      server = await StoreServer.start(config, { onRemoved: () => removed() });
    } catch (error) {
      const known = error instanceof ConfigError || String((error as { code?: unknown }).code ?? '').startsWith('CONCORD_E_');
      process.stderr.write(`concord server: ${known ? '' : 'unexpected error: '}${(error as Error).message}\n`);
      setExitCode(known ? 2 : 1);
      return;
    }
    const plane = options.controlPlane === false ? undefined : await startControlPlane(server, config, options.controlPlaneAdmin, credentials);
    await new Promise<void>((resolve) => {
      const shutdown = (signal: string) => {
        process.stderr.write(`concord server: ${signal} received, shutting down\n`);
        // The control plane goes first: it deregisters (its checks move to the others at once) while the store still answers.
        const planeStopped = plane === undefined ? Promise.resolve() : plane.plane.stop().catch(() => undefined).finally(() => plane.store.close());
        planeStopped.then(() => server.stop()).then(resolve, (error: unknown) => {
          process.stderr.write(`concord server: error while stopping: ${(error as Error).message}\n`);
          setExitCode(1);
          resolve();
        });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      // A member removed from the cluster stops serving; its control plane cannot reach the store through it any more.
      void whenRemoved.then(() => (plane === undefined ? undefined : plane.plane.crash().finally(() => plane.store.close()))).then(resolve);
    });
  });
}

/** The member's own client address, as a store location the control plane can use. */
function ownLocation(server: StoreServer, config: ServerConfig): ReturnType<typeof parseStoreLocation> {
  const address = server.clientAddresses[0]!.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  const tls = config.listenClientUrls[0]?.protocol === 'https:';
  if (!tls) return parseStoreLocation(`etcd://${address}`);
  const files = config.clientTls;
  return parseStoreLocation(`etcds://${address}`, { caFile: files.trustedCaFile, ...(files.clientCertAuth ? { certFile: files.certFile, keyFile: files.keyFile } : {}) });
}

/** Starts the control plane against this member; a failure is reported and the store member keeps serving. */
async function startControlPlane(server: StoreServer, config: ServerConfig, admin: string | undefined, credentials: StoreCredentials | undefined): Promise<{ plane: ControlPlane; store: EtcdCoordStore } | undefined> {
  const log = (level: string) => (text: string) => process.stderr.write(`concord server: control plane: ${level === 'info' ? '' : `${level}: `}${text}\n`);
  let store: EtcdCoordStore | undefined;
  try {
    store = new EtcdCoordStore(ownLocation(server, config), credentials === undefined ? {} : { credentials });
    const plane = await ControlPlane.start({
      store, cluster: store.cluster, name: config.name, ...(admin === undefined ? {} : { admin }),
      hostedMetrics: [() => server.metrics.registry.metrics()],
      logger: { info: log('info'), warn: log('warn') },
    });
    process.stderr.write(`concord server: control plane ${config.name} running; admin API and dashboard at ${plane.adminUrl}\n`);
    return { plane, store };
  } catch (error) {
    store?.close();
    process.stderr.write(`concord server: the control plane did not start (the store member keeps serving): ${(error as Error).message}\n`);
    return undefined;
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
