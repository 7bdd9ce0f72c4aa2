// `concord proxy --config FILE`: runs the load balancer described by the config file's proxy:,
// pools: and routes: sections. SIGTERM or SIGINT drains (stop accepting, finish in-flight requests
// up to proxy.shutdownDrainMs) and exits.

import type { Command } from 'commander';
import { ConfigError, loadConfigFile, type ConcordConfig } from '../control/config.ts';
import { StaticPoolSource } from '../traffic/proxy/pool-source.ts';
import { ProxyServer } from '../traffic/proxy/proxy-server.ts';
import { runProxyWorkers } from '../traffic/proxy/workers.ts';

export interface ProxyFlags {
  config: string;
  listen?: string;
  admin?: string;
  workers?: string;
}

/** The config file with flag overrides, validated as a whole. */
export function proxyConfigFrom(flags: ProxyFlags): ConcordConfig {
  const config = loadConfigFile(flags.config);
  if (config.pools.length === 0) throw new ConfigError(`config file ${flags.config} has no pools: add a pools: section (see examples/proxy.yaml)`);
  const settings = { ...config.proxy };
  if (flags.listen !== undefined) settings.listen = flags.listen;
  if (flags.admin !== undefined) settings.admin = flags.admin;
  if (flags.workers !== undefined) {
    if (!/^\d+$/.test(flags.workers) || Number(flags.workers) < 1 || Number(flags.workers) > 64) throw new ConfigError(`--workers: '${flags.workers}' must be a whole number from 1 to 64`);
    settings.workers = Number(flags.workers);
  }
  return { ...config, proxy: settings };
}

export function registerProxyCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('proxy')
    .description('Run the HTTP load balancer: pools, balancing, health checks, retries, admin API (see examples/proxy.yaml).')
    .requiredOption('--config <file>', 'YAML config file with proxy:, pools: and (for several pools) routes:')
    .option('--listen <host:port>', 'override proxy.listen')
    .option('--admin <host:port>', 'override proxy.admin')
    .option('--workers <n>', 'override proxy.workers (processes sharing the listen port)')
    .action(async (flags: ProxyFlags) => {
      let config: ConcordConfig;
      try {
        config = proxyConfigFrom(flags);
      } catch (error) {
        const known = error instanceof ConfigError;
        process.stderr.write(`concord proxy: ${known ? '' : 'unexpected error: '}${(error as Error).message}\n`);
        setExitCode(2);
        return;
      }
      if (config.proxy.workers > 1) {
        // The primary forks workers that run this same command; each knows its role from node:cluster.
        setExitCode(await runProxyWorkers(config));
        return;
      }
      setExitCode(await runSingleProcess(config));
    });
}

async function runSingleProcess(config: ConcordConfig): Promise<number> {
  let proxy: ProxyServer;
  try {
    proxy = await ProxyServer.start({ settings: config.proxy, source: new StaticPoolSource({ pools: config.pools, routes: config.routes }) });
  } catch (error) {
    process.stderr.write(`concord proxy: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  proxy.log.notice('proxy started', { listen: config.proxy.listen, admin: config.proxy.admin, pools: config.pools.map((pool) => pool.name) });
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      proxy.log.notice(`${signal} received: draining`, { inFlight: proxy.requestsInFlight, deadlineMs: config.proxy.shutdownDrainMs });
      proxy.stop().then(() => resolve(0), (error: unknown) => {
        process.stderr.write(`concord proxy: error while stopping: ${(error as Error).message}\n`);
        resolve(1);
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}
