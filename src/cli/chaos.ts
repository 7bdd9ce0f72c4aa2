// `concord chaos`: a real cluster under faults and a client workload, judged at the end (see
// src/chaos/chaos-run.ts). Exit 0 when every check passes, 1 when one fails (the report, history
// and member logs stay in the work dir), 2 on bad arguments.

import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { FAULT_KINDS, runChaos } from '../chaos/chaos-run.ts';
import type { ChaosReport, FaultKind } from '../chaos/chaos-run.ts';
import { SERVER_BUGS, isServerBug } from '../server/server-config.ts';
import { MIN_FAULT_PHASE_MS } from '../chaos/system/fault-schedule.ts';
import { runSystemChaos } from '../chaos/system/system-run.ts';
import { summarizeSystemReport } from '../chaos/system/system-report.ts';

const DEFAULT_DURATION_SECONDS = 60;
const MAX_DURATION_SECONDS = 24 * 3600;

export function registerChaosCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('chaos')
    .description('Run a real Concord cluster on loopback under faults and a client workload, then check linearizability, lost writes and convergence.')
    .addOption(new Option('--members <count>', 'cluster size').choices(['3', '5']).default('3'))
    .option('--duration <seconds>', `how long faults are injected (every fault kind occurs in ${DEFAULT_DURATION_SECONDS} s)`, positiveInteger('--duration', MAX_DURATION_SECONDS), DEFAULT_DURATION_SECONDS)
    .option('--seed <n>', 'seed of the fault schedule (default: random; printed for replay)', positiveInteger('--seed', Number.MAX_SAFE_INTEGER))
    .option('--faults <list>', `fault kinds to inject, comma-separated (default all: ${FAULT_KINDS.join(',')})`, faultList)
    .option('--json', 'print the report as one JSON object on the last line of stdout')
    .option('--work-dir <dir>', 'folder for data dirs, logs and the report (kept); default: a temp folder, removed when the run passes')
    .option('--system', `whole-system chaos: store members with their control planes, two store-fed proxies, an autoscaled pool and HTTP load (docs/chaos.md); at least ${MIN_FAULT_PHASE_MS / 1000} s`)
    .addOption(new Option('--bug <name>', `switch on a server defect, to see the checks catch it: ${Object.keys(SERVER_BUGS).join(', ')}`).argParser(collectBug))
    .action(async (options: { members: string; duration: number; seed?: number; faults?: FaultKind[]; json?: boolean; workDir?: string; bug?: string[]; system?: boolean }, command: Command) => {
      const seed = options.seed ?? Math.floor(Math.random() * 1_000_000);
      if (options.system) {
        const misplaced = ['members', 'faults', 'bug'].filter((name) => command.getOptionValueSource(name) === 'cli');
        if (misplaced.length > 0) command.error(`--system runs its own members and faults: drop ${misplaced.map((name) => `--${name}`).join(', ')}`, { exitCode: 2 });
        if (options.duration * 1000 < MIN_FAULT_PHASE_MS) command.error(`--duration must be at least ${MIN_FAULT_PHASE_MS / 1000} with --system (six faults, each with time to recover)`, { exitCode: 2 });
        const report = await runSystemChaos({
          durationSeconds: options.duration, seed, ...(options.workDir === undefined ? {} : { workDir: options.workDir }),
          onProgress: (line) => process.stderr.write(`${line}\n`),
        });
        if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else process.stdout.write(summarizeSystemReport(report));
        setExitCode(report.passed ? 0 : 1);
        return;
      }
      const report = await runChaos({
        members: Number(options.members) as 3 | 5,
        durationSeconds: options.duration,
        seed,
        bugs: options.bug ?? [],
        faultKinds: options.faults,
        workDir: options.workDir,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(summary(report));
      setExitCode(report.passed ? 0 : 1);
    });
}

function summary(report: ChaosReport): string {
  const lines = [
    `${report.passed ? 'PASS' : 'FAIL'}: ${report.ops} operations (${report.acked} answered, ${report.unknown} of unknown outcome) on ${report.members} members for ${report.durationSeconds} s, seed ${report.seed}`,
    `  linearizable: ${report.linearizabilityVerdict}; acknowledged writes lost: ${report.lostWrites}; members converged: ${report.converged}`,
    `  faults: ${FAULT_KINDS.map((kind) => `${kind} ${report.faults[kind]}`).join(', ')}; leader changes: ${report.leaderChanges}; longest write gap ${report.longestWriteGapMs} ms`,
    ...report.problems.map((problem) => `  problem: ${problem.length > 600 ? `${problem.slice(0, 600)}... (whole in the report)` : problem}`),
    ...(report.passed ? [] : [`  report, history and member logs: ${report.workDir}`, `  replay the fault schedule: ${report.replay}`]),
  ];
  return `${lines.join('\n')}\n`;
}

function positiveInteger(flag: string, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${flag} must be a whole number from 1 to ${max}`);
    return Number(value);
  };
}

function faultList(value: string): FaultKind[] {
  const kinds = value.split(',').map((kind) => kind.trim()).filter(Boolean);
  const unknown = kinds.filter((kind) => !(FAULT_KINDS as readonly string[]).includes(kind));
  if (kinds.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`unknown fault kind(s) ${unknown.join(', ') || '(none given)'}; known: ${FAULT_KINDS.join(', ')}`);
  return kinds as FaultKind[];
}

function collectBug(value: string, previous: string[] = []): string[] {
  if (!isServerBug(value)) throw new InvalidArgumentError(`unknown defect '${value}'; known: ${Object.keys(SERVER_BUGS).join(', ')}`);
  return [...previous, value];
}
