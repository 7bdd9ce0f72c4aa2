// The autoscaling benchmark: Concord's policy against an HPA-equivalent policy, on the same
// simulated pool (same metric lag, control period, start-up delay and warm-up), over every
// built-in scenario or over an operator's own trace.
//
//   npx concord bench autoscale                  # the built-in scenarios, table and goals
//   npx concord bench autoscale --json           # the same; the table goes to stderr
//   npx concord bench autoscale --trace my.csv   # replay a trace (CSV: seconds,requests_per_second)
//   npx concord bench autoscale --seed 7         # other seeded traces
//
// The simulation is deterministic: one run is the measurement (no medians needed), and the same
// seed gives the same figures on any machine. The last line on stdout is a JSON summary with one
// row per trace holding, for `concord` and `hpa`, sloViolationMinutes, instanceHours, actions,
// maxInstances and guardActivations, plus the goals and whether each holds.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { compareOnScenario, DEFAULT_POOL_UNDER_TEST, evaluateGoals, type ComparisonRow, type GoalResult } from '../src/autoscale/sim/comparison.ts';
import { builtInScenarios, type Scenario } from '../src/autoscale/sim/scenarios.ts';
import { DEFAULT_SIM_PARAMS, type SimResult } from '../src/autoscale/sim/simulation.ts';
import { parseTraceCsv, TraceError } from '../src/autoscale/sim/trace-csv.ts';

const USAGE = `usage: concord bench autoscale [--trace FILE] [--seed N] [--json]

  --trace FILE  replay this trace instead of the built-in scenarios
                (CSV lines 'seconds,requests_per_second'; see docs/autoscaling.md)
  --seed N      seed of the built-in traces (default 1)
  --json        print the table on stderr; stdout has only the JSON summary
`;

interface Options {
  trace?: string;
  seed: number;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { trace: { type: 'string' }, seed: { type: 'string', default: '1' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
  return { trace: values.trace, seed, json: values.json };
}

class UsageError extends Error {}

function scenarios(options: Options): Scenario[] {
  if (options.trace === undefined) return builtInScenarios(options.seed);
  let text: string;
  try {
    text = readFileSync(options.trace, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --trace ${options.trace}: ${(error as Error).message}`);
  }
  const trace = parseTraceCsv(text, basename(options.trace));
  return [{ name: trace.name, description: `replayed from ${options.trace}`, trace, faults: {} }];
}

function summary(result: SimResult) {
  return {
    sloViolationMinutes: result.sloViolationMinutes,
    instanceHours: round(result.instanceHours, 2),
    actions: result.actions,
    maxInstances: result.maxInstances,
    guardActivations: result.guardActivations,
    pacing: result.pacing,
    badRequestPercent: round(result.badRequestPercent, 3),
    scaleInsDuringOutage: result.scaleInsDuringOutage,
    peakConnectionsRatio: round(result.peakConnectionsRatio, 2),
    ...(result.periodsToFreeze === undefined ? {} : { periodsToFreeze: result.periodsToFreeze }),
    ...(result.frozeAtSeconds === undefined ? {} : { frozeAtSeconds: result.frozeAtSeconds }),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function table(rows: readonly ComparisonRow[], goals: readonly GoalResult[]): string {
  const lines: string[] = [];
  const header = ['trace', 'SLO-violation min', 'instance-hours', 'actions', 'max instances', 'Concord guard activations'];
  const body = rows.map((row) => [
    row.scenario.guardCheck ? `${row.scenario.name} (guard check)` : row.scenario.name,
    `${row.concord.sloViolationMinutes} / ${row.hpa.sloViolationMinutes}`,
    `${row.concord.instanceHours.toFixed(1)} / ${row.hpa.instanceHours.toFixed(1)}`,
    `${row.concord.actions} / ${row.hpa.actions}`,
    `${row.concord.maxInstances} / ${row.hpa.maxInstances}`,
    Object.entries(row.concord.guardActivations).map(([guard, count]) => `${guard} ${count}`).join(', ') || '-',
  ]);
  const widths = header.map((title, k) => Math.max(title.length, ...body.map((cells) => cells[k]!.length)));
  const format = (cells: string[]) => cells.map((cell, k) => cell.padEnd(widths[k]!)).join('  ');
  lines.push('Concord / HPA-equivalent, on the same simulated pool', format(header), format(widths.map((w) => '-'.repeat(w))), ...body.map(format));
  const traces = rows.filter((row) => !row.scenario.guardCheck);
  const totals = (pick: (r: SimResult) => number) => [traces.reduce((s, r) => s + pick(r.concord), 0), traces.reduce((s, r) => s + pick(r.hpa), 0)];
  const [concordHours, hpaHours] = totals((r) => r.instanceHours);
  const [concordMinutes, hpaMinutes] = totals((r) => r.sloViolationMinutes);
  lines.push('', `load traces in total: SLO-violation minutes ${concordMinutes} / ${hpaMinutes}; instance-hours ${concordHours!.toFixed(1)} / ${hpaHours!.toFixed(1)} (ratio ${(concordHours! / hpaHours!).toFixed(3)})`);
  if (goals.length > 0) {
    lines.push('', 'goals:');
    for (const goal of goals) lines.push(`  ${goal.passed ? 'PASS' : 'FAIL'}  ${goal.goal}: ${goal.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

function main(argv: string[]): number {
  let options: Options;
  let selected: Scenario[];
  try {
    options = parseOptions(argv);
    selected = scenarios(options);
  } catch (error) {
    if (error instanceof UsageError || error instanceof TraceError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`concord bench autoscale: ${(error as Error).message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }
  const rows = selected.map((scenario) => compareOnScenario(scenario));
  const goals = options.trace === undefined ? evaluateGoals(rows) : [];
  (options.json ? process.stderr : process.stdout).write(table(rows, goals));
  const result = {
    benchmark: 'autoscale',
    seed: options.trace === undefined ? options.seed : undefined,
    trace: options.trace,
    pool: DEFAULT_POOL_UNDER_TEST,
    sim: {
      periodMs: DEFAULT_SIM_PARAMS.periodMs,
      metricLagMs: DEFAULT_SIM_PARAMS.metricLagMs,
      startupDelayMs: DEFAULT_SIM_PARAMS.startupDelayMs,
      warmupMs: DEFAULT_SIM_PARAMS.warmupMs,
      slo: DEFAULT_SIM_PARAMS.slo,
    },
    traces: rows.map((row) => ({
      trace: row.scenario.name,
      description: row.scenario.description,
      ...(row.scenario.guardCheck ? { guardCheck: true } : {}),
      concord: summary(row.concord),
      hpa: summary(row.hpa),
    })),
    goals: goals.map((goal) => ({ goal: goal.goal, passed: goal.passed, detail: goal.detail })),
    date: new Date().toISOString(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return goals.every((goal) => goal.passed) ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
