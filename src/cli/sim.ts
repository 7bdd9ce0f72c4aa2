// `concord sim`: runs the deterministic cluster simulation over many seeds, reports safety and
// liveness, and writes a replayable trace file for every violating seed.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { INJECTABLE_BUGS, isInjectableBug } from '../consensus/bugs.ts';
import type { InjectableBug } from '../consensus/bugs.ts';
import { FAULT_KINDS, parseFaults } from '../sim/faults.ts';
import type { FaultKind } from '../sim/faults.ts';
import { runSimulation } from '../sim/simulation.ts';
import type { SeedReport } from '../sim/simulation.ts';
import { ProgressBar } from './progress-bar.ts';

export interface SimCliOptions {
  seed: number;
  seeds: number;
  members: number;
  ticks: number;
  faults: FaultKind[];
  bug?: InjectableBug;
  json: boolean;
  listBugs: boolean;
  keepGoing: boolean;
  traceDir: string;
}

/** Upper bounds that keep a mistyped flag from starting a run that never ends. */
export const MAX_SEEDS = 1_000_000;
export const MAX_TICKS = 10_000_000;

function integerIn(name: string, min: number, max: number) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, got '${raw}'.`);
    }
    return value;
  };
}

function memberCount(raw: string): number {
  if (raw !== '3' && raw !== '5') throw new InvalidArgumentError(`--members must be 3 or 5, got '${raw}'.`);
  return Number(raw);
}

function faultList(raw: string): FaultKind[] {
  try {
    return parseFaults(raw);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function bugName(raw: string): InjectableBug {
  if (!isInjectableBug(raw)) {
    throw new InvalidArgumentError(`unknown bug '${raw}': run 'concord sim --list-bugs' for the names.`);
  }
  return raw;
}

export function registerSimCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('sim')
    .description('Simulate a Raft cluster deterministically under faults; check safety, liveness and linearizability.')
    .option('--seed <n>', 'first seed', integerIn('--seed', 0, Number.MAX_SAFE_INTEGER - MAX_SEEDS), 1)
    .option('--seeds <count>', 'how many consecutive seeds to run', integerIn('--seeds', 1, MAX_SEEDS), 1)
    .option('--members <n>', 'cluster size: 3 or 5', memberCount, 5)
    .option('--ticks <n>', 'ticks of the fault phase per seed', integerIn('--ticks', 1, MAX_TICKS), 5_000)
    .option('--faults <list>', `comma-separated faults (${FAULT_KINDS.join(', ')}), 'all' or 'none'`, faultList, [...FAULT_KINDS])
    .option('--bug <name>', 'switch on a deliberate defect in the core (see --list-bugs)', bugName)
    .option('--json', 'print a JSON summary as the last line', false)
    .option('--list-bugs', 'print the injectable bug names, one per line, and exit', false)
    .option('--keep-going', 'run every seed even after a violation', false)
    .option('--trace-dir <dir>', 'where trace files of violating seeds are written', 'sim-traces')
    .action((options: SimCliOptions) => {
      setExitCode(runSimCommand(options, process.stdout, process.stderr));
    });
}

interface Totals {
  seeds: number;
  ticks: number;
  commits: number;
  elections: number;
  operations: number;
  violations: number;
  violatingSeeds: number;
  firstViolationSeed: number | null;
  linearizable: boolean;
  linearizabilityUnknown: number;
}

export function runSimCommand(options: SimCliOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream & { isTTY?: boolean }): number {
  if (options.listBugs) {
    for (const bug of INJECTABLE_BUGS) out.write(`${bug}\n`);
    return 0;
  }
  const totals: Totals = {
    seeds: 0, ticks: 0, commits: 0, elections: 0, operations: 0, violations: 0, violatingSeeds: 0,
    firstViolationSeed: null, linearizable: true, linearizabilityUnknown: 0,
  };
  const progress = options.seeds > 1 && err.isTTY ? new ProgressBar(err, options.seeds) : undefined;
  const started = performance.now();
  for (let i = 0; i < options.seeds; i++) {
    const seed = options.seed + i;
    const report = runSimulation({
      seed, members: options.members, ticks: options.ticks, faults: options.faults, bugs: options.bug ? [options.bug] : [],
    });
    accumulate(totals, report);
    progress?.update(i + 1, totals.violatingSeeds);
    if (report.violations.length > 0) {
      progress?.clear();
      reportViolation(report, options, out);
      if (!options.keepGoing) break;
    }
  }
  progress?.finish();
  const elapsedMinutes = (performance.now() - started) / 60_000;
  printSummary(totals, options, out, elapsedMinutes);
  return totals.violations > 0 ? 1 : 0;
}

function accumulate(totals: Totals, report: SeedReport): void {
  totals.seeds++;
  totals.ticks += report.ticks;
  totals.commits += report.commits;
  totals.elections += report.elections;
  totals.operations += report.operations;
  totals.violations += report.violations.length;
  if (report.linearizability === 'not-linearizable') totals.linearizable = false;
  if (report.linearizability === 'unknown') totals.linearizabilityUnknown++;
  if (report.violations.length > 0) {
    totals.violatingSeeds++;
    totals.firstViolationSeed ??= report.seed;
  }
}

export function replayCommand(seed: number, options: SimCliOptions): string {
  const parts = ['npx concord sim', `--seed ${seed}`, `--members ${options.members}`, `--ticks ${options.ticks}`,
    `--faults ${options.faults.length === FAULT_KINDS.length ? 'all' : options.faults.join(',') || 'none'}`];
  if (options.bug) parts.push(`--bug ${options.bug}`);
  return parts.join(' ');
}

function reportViolation(report: SeedReport, options: SimCliOptions, out: NodeJS.WritableStream): void {
  const directory = resolve(options.traceDir);
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `seed-${report.seed}${options.bug ? `-${options.bug}` : ''}.txt`);
  const replay = replayCommand(report.seed, options);
  const lines = [
    `# Concord simulation trace. Replay with: ${replay}`,
    ...report.violations.map((v) => `# VIOLATION ${v.property} at tick ${v.tick}: ${v.detail.split('\n')[0]}`),
    '',
    ...report.trace,
    '',
    ...report.violations.map((v) => `VIOLATION ${v.property} at tick ${v.tick}:\n${v.detail}\n`),
  ];
  writeFileSync(path, lines.join('\n'));
  for (const violation of report.violations) {
    out.write(`seed ${report.seed}: ${violation.property} violated at tick ${violation.tick}: ${violation.detail.split('\n')[0]}\n`);
  }
  out.write(`seed ${report.seed}: trace written to ${path}\n  replay: ${replay}\n`);
}

function printSummary(totals: Totals, options: SimCliOptions, out: NodeJS.WritableStream, elapsedMinutes: number): void {
  const seedsPerMinute = elapsedMinutes > 0 ? Math.round(totals.seeds / elapsedMinutes) : 0;
  out.write(
    `${totals.seeds} seed(s), ${options.members} members, ${totals.ticks} ticks, ${totals.commits} commits, ` +
    `${totals.elections} elections, ${totals.operations} client operations: ` +
    `${totals.violations === 0 ? 'safe and live' : `${totals.violations} violation(s) in ${totals.violatingSeeds} seed(s)`}` +
    `${totals.linearizable ? '' : ', NOT linearizable'}\n`,
  );
  if (!options.json) return;
  out.write(JSON.stringify({
    seeds: totals.seeds,
    members: options.members,
    ticks: totals.ticks,
    commits: totals.commits,
    elections: totals.elections,
    operations: totals.operations,
    linearizable: totals.linearizable,
    linearizabilityUnknownSeeds: totals.linearizabilityUnknown,
    violations: totals.violations,
    violatingSeeds: totals.violatingSeeds,
    firstViolationSeed: totals.firstViolationSeed,
    faults: options.faults,
    bug: options.bug ?? null,
    seedsPerMinute,
  }) + '\n');
}
