// `concord control-plane --store URL`: the control plane on its own, against any store that speaks
// the etcd v3 API (an existing etcd cluster, or Concord members started with --no-control-plane).
// Run one on each of several machines: they share the health checks, one leads the autoscaler, and
// each serves the admin API. Its configuration is the applied one (concord config apply).
//
// SIGINT/SIGTERM: deregisters (its checks move to the other members at once), resigns the
// autoscaler's leadership, stops the instances a process provider started here, and exits 0.
// Exit codes: 2 a bad flag; 1 it could not start (the store unreachable, the admin address in use).

import type { Command } from 'commander';
import { ControlPlane } from '../control/plane.ts';
import { COMPONENT_NAME_PATTERN } from '../control/store-keys.ts';
import { defaultComponentName } from '../traffic/proxy/store-feed.ts';
import { addStoreOptions, exitCodeFor, openStore, type StoreFlagValues } from './store-flags.ts';

interface ControlPlaneFlags extends StoreFlagValues {
  name?: string;
  admin?: string;
  adminCert?: string;
  adminKey?: string;
}

export function registerControlPlaneCommand(program: Command, setExitCode: (code: number) => void): void {
  addStoreOptions(program
    .command('control-plane')
    .description('Run the control plane (shared health checks, autoscaler, event timeline, admin API and dashboard) against a store; concord server runs one with each member.')
    .option('--name <name>', 'this member\'s name in the store (default: host-pid)')
    .option('--admin <host:port>', 'the admin API and dashboard address instead of controlPlane.admin (127.0.0.1:7070)')
    .option('--admin-cert <file>', 'serve the admin API and dashboard over HTTPS with this certificate (PEM; with --admin-key), instead of controlPlane.tls')
    .option('--admin-key <file>', 'the admin certificate\'s key'))
    .action(async (flags: ControlPlaneFlags) => {
      const name = flags.name ?? defaultComponentName('control-plane');
      if (!COMPONENT_NAME_PATTERN.test(name)) {
        process.stderr.write(`concord control-plane: --name '${name}' must be letters, digits, '.', '_' or '-' (at most 63), starting with a letter or digit\n`);
        setExitCode(2);
        return;
      }
      if ((flags.adminCert === undefined) !== (flags.adminKey === undefined)) {
        process.stderr.write('concord control-plane: --admin-cert and --admin-key go together (the certificate and its key)\n');
        setExitCode(2);
        return;
      }
      let store: ReturnType<typeof openStore>;
      try {
        store = openStore(flags);
      } catch (error) {
        process.stderr.write(`concord control-plane: ${(error as Error).message}\n`);
        setExitCode(exitCodeFor(error));
        return;
      }
      const log = (level: string) => (text: string) => process.stderr.write(`concord control-plane: ${level === 'info' ? '' : `${level}: `}${text}\n`);
      let plane: ControlPlane;
      try {
        plane = await ControlPlane.start({ store, cluster: store.cluster, name, ...(flags.admin === undefined ? {} : { admin: flags.admin }),
          ...(flags.adminCert === undefined || flags.adminKey === undefined ? {} : { adminTls: { certFile: flags.adminCert, keyFile: flags.adminKey } }),
          logger: { info: log('info'), warn: log('warn') } });
      } catch (error) {
        store.close();
        process.stderr.write(`concord control-plane: cannot start: ${(error as Error).message}\n`);
        setExitCode(1);
        return;
      }
      process.stderr.write(`concord control-plane: ${name} running against ${store.describe()}; admin API and dashboard at ${plane.adminUrl}\n`);
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string) => {
          process.stderr.write(`concord control-plane: ${signal} received, stopping\n`);
          plane.stop().finally(() => {
            store.close();
            resolve();
          });
        };
        process.once('SIGINT', () => shutdown('SIGINT'));
        process.once('SIGTERM', () => shutdown('SIGTERM'));
      });
    });
}
