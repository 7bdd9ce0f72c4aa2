// Runs a compatibility script against one endpoint and records what etcdctl printed, normalized;
// diffs two such records. To compare Concord with etcd:
//
//   const etcdRun = await runCompatScripts(etcdMember.endpoint);
//   const concordRun = await runCompatScripts(concordEndpoint);
//   assert.deepEqual(diffCompatRuns(etcdRun, concordRun), []);
//
// Both servers must be fresh single members started under COMPAT_MEMBER_NAME (etcd-process.ts).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EtcdctlProcess,
  findJsonField,
  Normalizer,
  parseEtcdctlOutput,
  runEtcdctl,
  userFacingErrors,
  type EtcdctlOutcome,
} from './etcdctl.ts';
import { COMPAT_SCRIPT, type CompatScript, type CompatStep, type RunStep } from './scripts.ts';

/** Bound on waiting for a long-running command to print what the step expects. */
const LONG_RUNNING_WAIT_MS = 5_000;
/**
 * After a long-running command printed the expected lines, how long to keep listening before ^C,
 * so that a server sending more than it should is caught rather than cut off.
 */
const EXTRA_OUTPUT_SETTLE_MS = 200;

export interface StepResult {
  readonly step: string;
  /** 'exit 0', 'exit 1', ..., 'interrupted' (stopped by the script, as intended), 'timed out', 'skipped: why'. */
  readonly status: string;
  /** Normalized stdout, one entry per line: a JSON document or a text line. Absent when only the exit status is compared. */
  readonly output?: readonly unknown[];
  /** Normalized user-facing stderr lines (etcdctl's "Error: ..."). */
  readonly errors?: readonly string[];
}

export interface CompatRun {
  readonly endpoint: string;
  readonly results: readonly StepResult[];
  /** Harness-level trouble: unexpected failures, timeouts, missing captures. Empty on a clean run. */
  readonly problems: readonly string[];
}

export interface CompatRunOptions {
  script?: CompatScript;
}

/** Runs the script (COMPAT_SCRIPT by default) against `endpoint` (host:port), one step at a time. */
export async function runCompatScripts(endpoint: string, options: CompatRunOptions = {}): Promise<CompatRun> {
  const script = options.script ?? COMPAT_SCRIPT;
  const workDir = await mkdtemp(join(tmpdir(), 'concord-compat-'));
  const context: RunContext = {
    endpoint,
    workDir,
    normalizer: new Normalizer(script.sessionKeyPrefixes),
    leases: new Map(),
    background: new Map(),
    problems: [],
  };
  const results: StepResult[] = [];
  try {
    for (const step of script.steps) results.push(await runStep(step, context));
  } finally {
    for (const [name, process] of context.background) {
      await process.interrupt();
      context.problems.push(`background process '${name}' was never stopped by the script`);
    }
    await rm(workDir, { recursive: true, force: true });
  }
  return { endpoint, results, problems: context.problems };
}

interface RunContext {
  readonly endpoint: string;
  readonly workDir: string;
  readonly normalizer: Normalizer;
  /** Captured lease IDs by script name. */
  readonly leases: Map<string, bigint>;
  readonly background: Map<string, EtcdctlProcess>;
  readonly problems: string[];
}

async function runStep(step: CompatStep, context: RunContext): Promise<StepResult> {
  switch (step.kind) {
    case 'run':
      return runToCompletion(step, context);
    case 'start': {
      const args = substituteLeases(step.args, context);
      if (typeof args === 'string') return skipped(step.name, args, context);
      const process = new EtcdctlProcess({ args, endpoint: context.endpoint, cwd: context.workDir });
      context.background.set(step.process, process);
      if (!(await process.waitForLines(step.readyAfterLines, LONG_RUNNING_WAIT_MS))) {
        context.problems.push(`${step.name}: expected ${step.readyAfterLines} lines, got ${process.stdoutLineCount()}`);
      }
      return { step: step.name, status: process.running ? 'running' : 'exited early' };
    }
    case 'stop': {
      const process = context.background.get(step.process);
      if (process === undefined) return skipped(step.name, `no background process '${step.process}'`, context);
      context.background.delete(step.process);
      return record(step.name, await process.interrupt(), { args: [], compare: 'output' }, context);
    }
  }
}

async function runToCompletion(step: RunStep, context: RunContext): Promise<StepResult> {
  const args = substituteLeases(step.args, context);
  if (typeof args === 'string') return skipped(step.name, args, context);
  const invocation = { args, endpoint: step.offline ? undefined : context.endpoint, stdin: step.stdin, cwd: context.workDir };
  let outcome: EtcdctlOutcome;
  if (step.stopAfterLines === undefined) {
    outcome = await runEtcdctl(invocation);
  } else {
    const process = new EtcdctlProcess(invocation);
    if (!(await process.waitForLines(step.stopAfterLines, LONG_RUNNING_WAIT_MS))) {
      context.problems.push(`${step.name}: expected ${step.stopAfterLines} lines, got ${process.stdoutLineCount()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, EXTRA_OUTPUT_SETTLE_MS));
    outcome = await process.interrupt();
  }
  const result = record(step.name, outcome, step, context);
  if (result.status !== 'exit 0' && result.status !== 'interrupted' && !step.mayFail) {
    context.problems.push(`${step.name}: ${result.status}: ${outcome.stderr.trim().split('\n').at(-1) ?? ''}`);
  }
  if (step.captureLeaseAs !== undefined) captureLease(step, outcome, context);
  return result;
}

function record(name: string, outcome: EtcdctlOutcome, step: Pick<RunStep, 'args' | 'compare'>, context: RunContext): StepResult {
  const status = outcome.timedOut ? 'timed out' : outcome.interrupted ? 'interrupted' : `exit ${outcome.exitCode}`;
  if (outcome.timedOut) context.problems.push(`${name}: timed out`);
  if (step.compare === 'exit-status') return { step: name, status };
  const output = parseEtcdctlOutput(outcome.stdout, isJsonMode(step.args)).map((line) =>
    'json' in line ? context.normalizer.json(line.json) : context.normalizer.text(line.text),
  );
  const errors = userFacingErrors(outcome.stderr).map((line) => context.normalizer.text(line));
  return { step: name, status, output, errors };
}

function captureLease(step: RunStep, outcome: EtcdctlOutcome, context: RunContext): void {
  const id = findJsonField(parseEtcdctlOutput(outcome.stdout, true), 'ID');
  if (typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id))) {
    context.leases.set(step.captureLeaseAs!, BigInt(id));
  } else {
    context.problems.push(`${step.name}: no lease ID in the output to capture as '${step.captureLeaseAs}'`);
  }
}

/** Replaces `{{lease:NAME}}` by the captured lease ID in hex, as etcdctl takes it; a string says what is missing. */
function substituteLeases(args: readonly string[], context: RunContext): string[] | string {
  const missing: string[] = [];
  const substituted = args.map((arg) =>
    arg.replace(/\{\{lease:([\w-]+)\}\}/g, (_match, name: string) => {
      const id = context.leases.get(name);
      if (id === undefined) missing.push(name);
      return id?.toString(16) ?? '';
    }),
  );
  return missing.length === 0 ? substituted : `lease ${missing.join(', ')} was not captured`;
}

function skipped(name: string, why: string, context: RunContext): StepResult {
  context.problems.push(`${name}: skipped: ${why}`);
  return { step: name, status: `skipped: ${why}` };
}

function isJsonMode(args: readonly string[]): boolean {
  return args.some((arg, i) => arg === '--write-out=json' || arg === '-w=json' || ((arg === '-w' || arg === '--write-out') && args[i + 1] === 'json'));
}

// ---- Comparison ----

export interface CompatDifference {
  readonly step: string;
  /** Where inside the step's result, e.g. `output[0].kvs[0].value`. */
  readonly path: string;
  readonly expected: string;
  readonly actual: string;
}

/** Every place where two runs' normalized results differ, step by step. */
export function diffCompatRuns(expected: CompatRun, actual: CompatRun): CompatDifference[] {
  const differences: CompatDifference[] = [];
  const stepCount = Math.max(expected.results.length, actual.results.length);
  for (let i = 0; i < stepCount; i++) {
    const expectedStep = expected.results[i];
    const actualStep = actual.results[i];
    const step = expectedStep?.step ?? actualStep?.step ?? `#${i}`;
    diffValues(expectedStep, actualStep, '', (path, a, b) => differences.push({ step, path, expected: show(a), actual: show(b) }));
  }
  return differences;
}

function diffValues(a: unknown, b: unknown, path: string, report: (path: string, a: unknown, b: unknown) => void): void {
  if (Object.is(a, b)) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) diffValues(a[i], b[i], `${path}[${i}]`, report);
    return;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) diffValues(a[key], b[key], path === '' ? key : `${path}.${key}`, report);
    return;
  }
  report(path, a, b);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function show(value: unknown): string {
  if (value === undefined) return '(absent)';
  return JSON.stringify(value, (_key, field: unknown) => (typeof field === 'bigint' ? field.toString() : field));
}

/** A readable report of differences, for assertion messages. */
export function formatDifferences(differences: readonly CompatDifference[]): string {
  return differences.map((d) => `${d.step}: ${d.path === '' ? '(whole step)' : d.path}: expected ${d.expected}, got ${d.actual}`).join('\n');
}
