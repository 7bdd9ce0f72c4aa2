// A smoke test of `concord bench autoscale` itself (the benchmark's goals are asserted in
// benchmark-goals.test.ts): it replays a trace file and prints the documented JSON last line,
// and refuses a bad trace with what to fix.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('../../bench/autoscale.ts', import.meta.url));

test('--trace FILE --json replays the trace; the last stdout line holds both policies per trace', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const trace = join(dir, 'spike.csv');
  writeFileSync(trace, 'seconds,requests_per_second\n0,300\n600,300\n601,2000\n900,2000\n901,300\n1800,300\n');
  const run = spawnSync(process.execPath, [BENCH, '--trace', trace, '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'with --json stdout holds only the summary');
  const summary = JSON.parse(lines[0]!) as { traces: { trace: string; concord: Record<string, unknown>; hpa: Record<string, unknown> }[] };
  assert.deepEqual(summary.traces.map((row) => row.trace), ['spike.csv']);
  for (const policy of ['concord', 'hpa'] as const) {
    for (const key of ['sloViolationMinutes', 'instanceHours', 'actions', 'maxInstances', 'guardActivations']) assert.ok(key in summary.traces[0]![policy], `${policy}.${key}`);
  }
  assert.match(run.stderr, /spike\.csv/);
});

test('a bad trace file is refused with exit code 2 and the line to fix', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const trace = join(dir, 'bad.csv');
  writeFileSync(trace, '0,100\n60,lots\n');
  const run = spawnSync(process.execPath, [BENCH, '--trace', trace], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /bad\.csv line 2: requests_per_second 'lots' is not a non-negative number/);
});
