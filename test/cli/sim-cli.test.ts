// `concord sim` end to end through the CLI entry point (in process, with captured output), plus
// one run of the real `npx concord` binary as a user would start it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { INJECTABLE_BUGS } from '../../src/consensus/bugs.ts';
import { main } from '../../src/cli/main.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Runs the CLI in this process, capturing what it writes to stdout. */
async function runCli(args: string[]): Promise<{ exitCode: number; stdout: string }> {
  let stdout = '';
  const capture = new Writable({
    write(chunk, _encoding, done) {
      stdout += String(chunk);
      done();
    },
  });
  const originalWrite = process.stdout.write.bind(process.stdout);
  process.stdout.write = capture.write.bind(capture) as typeof process.stdout.write;
  try {
    const exitCode = await main(args);
    return { exitCode, stdout };
  } finally {
    process.stdout.write = originalWrite;
  }
}

function lastJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

test('--list-bugs prints every injectable bug, one per line', async () => {
  const { exitCode, stdout } = await runCli(['sim', '--list-bugs']);
  assert.equal(exitCode, 0);
  assert.deepEqual(stdout.trim().split('\n'), [...INJECTABLE_BUGS]);
});

test('--json ends with a summary object holding the documented fields', async () => {
  const { exitCode, stdout } = await runCli(['sim', '--seed', '5', '--seeds', '2', '--members', '3', '--ticks', '1000', '--json']);
  assert.equal(exitCode, 0);
  const summary = lastJsonLine(stdout);
  for (const field of ['seeds', 'ticks', 'commits', 'elections', 'linearizable', 'violations', 'seedsPerMinute']) {
    assert.ok(field in summary, `summary has ${field}`);
  }
  assert.equal(summary.seeds, 2);
  assert.equal(summary.violations, 0);
  assert.equal(summary.linearizable, true);
});

test('the same seed and options print the same output, apart from seedsPerMinute', async () => {
  const args = ['sim', '--seed', '9', '--seeds', '2', '--ticks', '800', '--json'];
  const first = lastJsonLine((await runCli(args)).stdout);
  const second = lastJsonLine((await runCli(args)).stdout);
  delete first.seedsPerMinute;
  delete second.seedsPerMinute;
  assert.deepEqual(second, first);
});

test('a violation exits 1 and prints the seed, the property and a trace file that names the replay command', async () => {
  const traceDir = mkdtempSync(join(tmpdir(), 'concord-sim-'));
  try {
    const { exitCode, stdout } = await runCli(['sim', '--bug', 'double-vote', '--seeds', '100', '--trace-dir', traceDir, '--json']);
    assert.equal(exitCode, 1);
    const match = /seed (\d+): (\S+) violated at tick \d+/.exec(stdout);
    assert.ok(match, stdout);
    assert.equal(match[2], 'election-safety');
    const tracePath = /trace written to (\S+)/.exec(stdout)?.[1];
    assert.ok(tracePath && existsSync(tracePath), 'trace file exists');
    const trace = readFileSync(tracePath, 'utf8');
    assert.match(trace, new RegExp(`Replay with: npx concord sim --seed ${match[1]} .*--bug double-vote`));
    assert.equal(lastJsonLine(stdout).firstViolationSeed, Number(match[1]));
  } finally {
    rmSync(traceDir, { recursive: true, force: true });
  }
});

test('bad flags are refused with exit code 2 and a message that says what is wrong', () => {
  for (const [args, expected] of [
    [['sim', '--members', '4'], /--members must be 3 or 5/],
    [['sim', '--ticks', '-5'], /--ticks must be a whole number/],
    [['sim', '--seeds', 'many'], /--seeds must be a whole number/],
    [['sim', '--faults', 'meteor'], /unknown fault 'meteor'/],
    [['sim', '--bug', 'typo'], /unknown bug 'typo'.*--list-bugs/],
  ] as const) {
    const result = spawnSync(join(root, 'node_modules/.bin/node'), [join(root, 'src/cli/entry.ts'), ...args], { encoding: 'utf8' });
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, expected);
  }
});

test('npx concord sim runs the built CLI from the package bin', () => {
  const output = execFileSync('npx', ['--no-install', 'concord', 'sim', '--seeds', '1', '--ticks', '300', '--json'], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
  assert.equal(lastJsonLine(output).violations, 0);
});
