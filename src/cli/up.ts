// `concord up`: the whole system in one command, for a first look and for development. One process
// runs a one-member store (etcd v3 API), the control plane (health checks, autoscaler, timeline,
// dashboard) and a proxy, with the example app's instances started by the autoscaler's process
// provider (src/up/embedded-system.ts). Prints where everything is, then a live status.
//
// Ctrl-C (SIGINT) or SIGTERM stops everything in order and leaves no process behind: the proxy
// drains, the backends stop, the store stops. A second Ctrl-C exits at once (the backends still
// die with it: the process provider starts them under a parent-death signal).
//
// Exit codes: 0 stopped cleanly; 2 a bad flag or configuration; 1 it could not start (an address in
// use, an unreadable data directory) or failed while stopping.

import { Option, type Command } from 'commander';
import { ConfigError, parseHostPort } from '../control/config.ts';
import { ConsoleOutput } from '../up/console-output.ts';
import { runDemoWithProgress } from './demo.ts';
import { EmbeddedSystem, type SystemAddresses } from '../up/embedded-system.ts';
import { statusLines } from '../up/status-line.ts';
import { operator } from './operator.ts';
import { credentialsFrom } from '../coord/store-credentials.ts';

interface UpFlags {
  config: string;
  dataDir: string;
  listen?: string;
  proxyAdmin?: string;
  admin?: string;
  storeListen: string;
  peerListen: string;
  demo?: boolean;
  jsonLogs?: boolean;
  status: boolean;
  statusIntervalMs: string;
  user?: string;
  passwordFile?: string;
}

const DEFAULT_CONFIG = 'examples/concord.yaml';
const DEFAULT_DATA_DIR = '.concord';
/** How often the live status is rebuilt from the overview. */
const STATUS_REFRESH_MS = 1_000;
/** How long the proxy's in-flight requests get when `up` stops (a local tool: no need for proxy.shutdownDrainMs). */
const STOP_DRAIN_DEADLINE_MS = 5_000;

export function registerUpCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('up')
    .description('Run everything in one process: a one-member store, the control plane with the dashboard, a proxy, and example backends (see examples/concord.yaml).')
    .option('--config <file>', 'the configuration to run (applied to the store when it changed)', DEFAULT_CONFIG)
    .option('--data-dir <dir>', 'the store\'s data and the access log; reused on the next run', DEFAULT_DATA_DIR)
    .option('--listen <host:port>', 'the proxy\'s address instead of proxy.listen (127.0.0.1:8080)')
    .option('--proxy-admin <host:port>', 'the proxy\'s admin port instead of proxy.admin (127.0.0.1:9901)')
    .option('--admin <host:port>', 'the dashboard and admin API instead of controlPlane.admin (127.0.0.1:7070)')
    .option('--store-listen <host:port>', 'the store\'s etcd v3 API', '127.0.0.1:2379')
    .option('--peer-listen <host:port>', 'the store\'s peer port (a one-member cluster listens too, so members can be added)', '127.0.0.1:2380')
    .option('--user <name>', 'the store user the control plane and the proxy act as, once you turn the store\'s authentication on (with --password-file)')
    .option('--password-file <file>', 'a file holding that user\'s password')
    .option('--demo', 'once up, drive the demo load pattern through the proxy (as `concord demo` does)')
    .option('--json-logs', 'log JSON lines (pino) instead of lines for people')
    .option('--no-status', 'no live status')
    .addOption(new Option('--status-interval-ms <ms>', 'how often the status is printed when the output is not a terminal').default('10000'))
    .action(async (flags: UpFlags) => {
      const problem = flagProblem(flags);
      if (problem !== undefined) {
        process.stderr.write(`concord up: ${problem}\n`);
        setExitCode(2);
        return;
      }
      setExitCode(await runUp(flags));
    });
}

function flagProblem(flags: UpFlags): string | undefined {
  const addresses: [string, string | undefined][] = [['--listen', flags.listen], ['--proxy-admin', flags.proxyAdmin], ['--admin', flags.admin], ['--store-listen', flags.storeListen], ['--peer-listen', flags.peerListen]];
  for (const [flag, value] of addresses) {
    if (value === undefined) continue;
    const parsed = parseHostPort(value);
    if (typeof parsed === 'string') return `${flag}: ${parsed}`;
  }
  if (!/^\d+$/.test(flags.statusIntervalMs) || Number(flags.statusIntervalMs) < 100) return `--status-interval-ms: '${flags.statusIntervalMs}' must be a whole number of milliseconds, at least 100`;
  return undefined;
}

async function runUp(flags: UpFlags): Promise<number> {
  const output = new ConsoleOutput({ stream: process.stderr, json: flags.jsonLogs === true, statusEveryMs: Number(flags.statusIntervalMs) });
  let system: EmbeddedSystem;
  try {
    const credentials = credentialsFrom({ user: flags.user, passwordFile: flags.passwordFile });
    system = await EmbeddedSystem.start({
      ...(credentials === undefined ? {} : { credentials }),
      configFile: flags.config, dataDir: flags.dataDir, storeListen: flags.storeListen, peerListen: flags.peerListen,
      ...(flags.listen === undefined ? {} : { proxyListen: flags.listen }),
      ...(flags.proxyAdmin === undefined ? {} : { proxyAdmin: flags.proxyAdmin }),
      ...(flags.admin === undefined ? {} : { admin: flags.admin }),
      operator: operator(), logger: output,
    });
  } catch (error) {
    const known = error instanceof ConfigError || String((error as { code?: unknown }).code ?? '').startsWith('CONCORD_E_');
    process.stderr.write(`concord up: ${known ? '' : 'cannot start: '}${(error as Error).message}${addressInUseHint(error)}\n`);
    return known ? 2 : 1;
  }
  printWhereEverythingIs(system.addresses, output);
  const statusTimer = flags.status ? setInterval(() => void showStatus(system, output), STATUS_REFRESH_MS) : undefined;
  const demo = new AbortController();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) {
        process.stderr.write('concord up: stopping at once\n');
        process.exit(1);
      }
      stopping = true;
      demo.abort();
      clearInterval(statusTimer);
      output.clearStatus();
      output.info('up', `${why}: stopping (the proxy drains, then the backends stop, then the store); Ctrl-C again to exit at once`);
      system.stop(STOP_DRAIN_DEADLINE_MS).then(() => {
        output.info('up', 'stopped; the store\'s data stays in ' + system.addresses.dataDir);
        resolve(0);
      }, (error: unknown) => {
        output.warn('up', `error while stopping: ${(error as Error).message}`);
        resolve(1);
      });
    };
    process.on('SIGINT', () => stop('Ctrl-C'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (flags.demo === true) {
      void runDemoWithProgress({ proxyUrl: system.addresses.proxyUrl, adminUrl: system.plane.adminUrl, signal: demo.signal, say: (text) => output.say(text) })
        .catch((error: unknown) => output.warn('demo', (error as Error).message));
    }
  });
}

function printWhereEverythingIs(addresses: SystemAddresses, output: ConsoleOutput): void {
  const store = addresses.storeEndpoint;
  output.say([
    '',
    'Concord is up.',
    `  proxy      ${addresses.proxyUrl.padEnd(28)} try: curl ${addresses.proxyUrl}/`,
    `  dashboard  ${addresses.dashboardUrl.padEnd(28)} (admin API, /metrics and /events there too)`,
    `  store      ${store.padEnd(28)} try: etcdctl --endpoints ${store} member list`,
    `  timeline   npx concord events --since 10m   (and: npx concord status, npx concord demo)`,
    `  data       ${addresses.dataDir} (access log: ${addresses.accessLogFile})`,
    'Ctrl-C stops everything.',
    '',
  ].join('\n'));
}

async function showStatus(system: EmbeddedSystem, output: ConsoleOutput): Promise<void> {
  try {
    output.status(statusLines(await system.plane.overview()), Date.now());
  } catch {
    // The overview reads the store; while the store is busy the status waits for the next tick.
  }
}

function addressInUseHint(error: unknown): string {
  return (error as { code?: string }).code === 'EADDRINUSE'
    ? ' (another program uses that address: stop it, or move Concord with --listen, --admin, --store-listen, --peer-listen or --proxy-admin)'
    : '';
}
