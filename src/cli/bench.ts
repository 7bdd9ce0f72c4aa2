// `concord bench NAME [ARGS...]`: runs one of the benchmarks in bench/ (bench/NAME.ts) with the
// same Node.js that runs Concord, passing the remaining arguments through. The benchmarks stay
// TypeScript files in bench/ (Node 24 runs them directly), outside the built dist/: they start
// peers (etcd, HAProxy, nginx) and load generators, which are no part of the product itself.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

/** bench/ at the package root, from src/cli and dist/cli alike. */
const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));

/** The benchmark entry points: bench/*.ts files that a benchmark's own modules do not import alone. */
export function availableBenchmarks(): string[] {
  if (!existsSync(BENCH_DIR)) return [];
  return readdirSync(BENCH_DIR)
    .filter((name) => name.endsWith('.ts'))
    .map((name) => name.slice(0, -'.ts'.length))
    .filter((name) => BENCHMARK_ENTRY_POINTS.has(name));
}

/** Each benchmark's entry file in bench/; the other files there are its building blocks. */
const BENCHMARK_ENTRY_POINTS = new Set(['store', 'proxy', 'overload', 'autoscale', 'balance', 'controller', 'auth', 'soak']);

export function registerBenchCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('bench')
    .description('Run a benchmark from bench/ against its real peer in the same run (JSON summary on the last line).')
    .argument('<name>', `the benchmark: ${[...BENCHMARK_ENTRY_POINTS].join(', ')} (those present in bench/)`)
    .argument('[args...]', 'arguments for the benchmark (try: concord bench NAME -- --help)')
    .allowUnknownOption(true)
    .helpOption('-h, --help-bench', 'help for `concord bench` itself')
    .action(async (name: string, args: string[]) => {
      const available = availableBenchmarks();
      if (!available.includes(name)) {
        process.stderr.write(`concord bench: no benchmark named '${name}'; available: ${available.join(', ') || '(none)'}\n`);
        setExitCode(2); // a usage error, as main.ts's EXIT_USAGE
        return;
      }
      setExitCode(await runBenchmark(name, args));
    });
}

function runBenchmark(name: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${BENCH_DIR}${name}.ts`, ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
