// `concord controller`: runs the autoscale controller for the pools of a YAML configuration file.
// Run it on every control-plane member; one leads (an election in the store), the others wait and
// take over within about --lease-ttl-seconds when it dies. SIGINT/SIGTERM: the leader resigns (a
// waiting controller takes over at once) and the instances a process provider started are stopped.

import { hostname } from 'node:os';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { AutoscaleController, DEFAULT_LEASE_TTL_SECONDS } from '../autoscale/controller/controller.ts';
import { poolSetupOf, readControllerConfig } from '../autoscale/controller/controller-config.ts';
import { ProxyMetricsSource } from '../autoscale/controller/proxy-metrics-source.ts';
import { DEFAULT_MAX_EVENTS, WRITER_PATTERN } from '../control/events.ts';
import { addStoreOptions, exitCodeFor, openStore, type StoreFlagValues } from './store-flags.ts';

/** etcd refuses lease TTLs beyond this many seconds; an election this slow to fail over makes no sense anyway. */
const MAX_LEASE_TTL_SECONDS = 3_600;

function defaultName(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50) || 'controller';
  return `${host}-${process.pid}`;
}

function wholeNumber(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}`);
    return Number(value);
  };
}

function urls(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((url) => url.trim()).filter(Boolean)];
}

interface ControllerFlags extends StoreFlagValues {
  config: string;
  name?: string;
  metricsUrl?: string[];
  leaseTtlSeconds: number;
  maxEvents: number;
}

export function registerControllerCommand(program: Command, setExitCode: (code: number) => void): void {
  addStoreOptions(program
    .command('controller')
    .description('Run the leader-elected autoscale controller for the pools with an autoscale: section in a config file.')
    .requiredOption('--config <file>', 'YAML configuration (pools[].name and pools[].autoscale are read)')
    .option('--name <name>', 'this controller\'s name, in the leader record and events (default: host-pid)')
    .option('--metrics-url <url>', 'a proxy\'s admin endpoint answering GET /backends with JSON (repeat or comma-separate for several proxies)', urls)
    .option('--lease-ttl-seconds <s>', 'election lease TTL: a dead leader is replaced within about this long', wholeNumber('--lease-ttl-seconds', 1, MAX_LEASE_TTL_SECONDS), DEFAULT_LEASE_TTL_SECONDS)
    .option('--max-events <n>', 'events kept in the store\'s timeline', wholeNumber('--max-events', 100, 10_000_000), DEFAULT_MAX_EVENTS))
    .action(async (flags: ControllerFlags) => {
      let controller: AutoscaleController;
      let close: () => void;
      try {
        const name = flags.name ?? defaultName();
        if (!WRITER_PATTERN.test(name)) throw Object.assign(new Error(`--name '${name}' must be letters, digits, '.', '_' or '-' (at most 63), starting with a letter or digit`), { code: 'CONCORD_E_CONFIG_INVALID' });
        if (flags.metricsUrl === undefined || flags.metricsUrl.length === 0) {
          throw Object.assign(new Error('--metrics-url is required: the proxies\' admin endpoints (GET /backends) are where the autoscaler learns load and health'), { code: 'CONCORD_E_CONFIG_INVALID' });
        }
        const pools = readControllerConfig(flags.config).map(poolSetupOf);
        const store = openStore(flags);
        const log = (level: string) => (text: string) => process.stderr.write(`concord controller: ${level === 'info' ? '' : `${level}: `}${text}\n`);
        const metrics = new ProxyMetricsSource({ urls: flags.metricsUrl, onProblem: log('warn') });
        controller = new AutoscaleController({
          store,
          name,
          pools,
          metrics,
          leaseTtlSeconds: flags.leaseTtlSeconds,
          maxEvents: flags.maxEvents,
          logger: { info: log('info'), warn: log('warn'), error: log('error') },
          onDecision: (decision) => {
            if (decision.actions.length > 0) log('info')(`pool ${decision.pool}: desired ${decision.desired} (current ${decision.current}): ${decision.actions.map((action) => action.kind).join(', ')}`);
          },
        });
        close = () => store.close();
        process.stderr.write(`concord controller: ${name} controls ${pools.map((pool) => pool.name).join(', ')} through ${store.describe()}\n`);
      } catch (error) {
        process.stderr.write(`concord controller: ${(error as Error).message}\n`);
        setExitCode(exitCodeFor(error));
        return;
      }
      controller.start();
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string) => {
          process.stderr.write(`concord controller: ${signal} received, stopping\n`);
          controller.stop().finally(() => {
            close();
            resolve();
          });
        };
        process.once('SIGINT', () => shutdown('SIGINT'));
        process.once('SIGTERM', () => shutdown('SIGTERM'));
      });
    });
}
