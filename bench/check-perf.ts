// Runs `etcdctl check perf --load=s|m|l|xl` against one endpoint and reads its verdicts. etcdctl
// 3.4 runs each load for a fixed 60 s (50/200/500/1000 clients at a 150/1,000/8,000/15,000 writes/s
// rate limit, 256-byte random keys and 1 KiB values under /etcdctl-check-perf/), then deletes the
// prefix, and prints three criteria and an overall verdict:
//
//   PASS: Throughput is 150 writes/s          FAIL: Throughput too low: 120 writes/s
//   PASS: Slowest request took 0.045s         Slowest request took too long: 0.786915s
//   PASS: Stddev is 0.004s                    Stddev too high: 0.2s
//   PASS                                      FAIL
//
// (The "too long" and "too high" lines carry no FAIL: prefix in etcdctl 3.4, and the first line may
// follow the progress bar, which goes to stderr, without a line break.) Each run is bounded:
// past its time limit etcdctl is killed and the run is reported as an ERROR.

import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export const ETCDCTL_BINARY = '/usr/bin/etcdctl';
export const CHECK_PERF_LOADS = ['s', 'm', 'l', 'xl'] as const;
export type CheckPerfLoad = (typeof CHECK_PERF_LOADS)[number];

/** etcdctl's fixed run length, plus what the prefix check before and the delete after may take. */
const CHECK_PERF_RUN_SECONDS = 60;
export const CHECK_PERF_OVERHEAD_SECONDS_MAX = 90;

export type Verdict = 'PASS' | 'FAIL' | 'ERROR';

export interface Criterion {
  pass: boolean;
  value: number;
}

export interface CheckPerfResult {
  load: CheckPerfLoad;
  /** The overall verdict etcdctl printed, or ERROR when it printed none (crash, timeout, refused). */
  verdict: Verdict;
  throughputWritesPerSecond?: Criterion;
  slowestSeconds?: Criterion;
  stddevSeconds?: Criterion;
  elapsedSeconds: number;
  /** Why the verdict is ERROR: etcdctl's last error lines or the timeout. */
  error?: string;
}

export function isCheckPerfLoad(text: string): text is CheckPerfLoad {
  return (CHECK_PERF_LOADS as readonly string[]).includes(text);
}

export function parseCheckPerfOutput(load: CheckPerfLoad, output: string, elapsedSeconds: number): CheckPerfResult {
  const lines = output.split(/[\r\n]+/).map((line) => line.trim()).filter(Boolean);
  const criterion = (pass: RegExp, fail: RegExp): Criterion | undefined => {
    for (const line of lines) {
      const passed = pass.exec(line);
      if (passed) return { pass: true, value: Number(passed[1]) };
      const failed = fail.exec(line);
      if (failed) return { pass: false, value: Number(failed[1]) };
    }
    return undefined;
  };
  const result: CheckPerfResult = {
    load,
    verdict: 'ERROR',
    throughputWritesPerSecond: criterion(/PASS: Throughput is (\d+) writes\/s/, /Throughput too low: (\d+) writes\/s/),
    slowestSeconds: criterion(/PASS: Slowest request took ([\d.]+)s/, /Slowest request took too long: ([\d.]+)s/),
    stddevSeconds: criterion(/PASS: Stddev is ([\d.]+)s/, /Stddev too high: ([\d.]+)s/),
    elapsedSeconds,
  };
  const overall = lines.map((line) => /(?:^|%)(PASS|FAIL)$/.exec(line)?.[1]).findLast((verdict) => verdict !== undefined);
  if (overall === 'PASS' || overall === 'FAIL') result.verdict = overall;
  else result.error = lines.filter((line) => /error|fail|denied|refused/i.test(line)).slice(-3).join(' | ') || 'no verdict printed';
  return result;
}

/** Runs one check; etcdctl's output is appended to `logPath`. Never throws for a failed check. */
export function runCheckPerf(load: CheckPerfLoad, endpoint: string, logPath: string): Promise<CheckPerfResult> {
  const timeoutMs = (CHECK_PERF_RUN_SECONDS + CHECK_PERF_OVERHEAD_SECONDS_MAX) * 1000;
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(ETCDCTL_BINARY, ['check', 'perf', `--load=${load}`, `--endpoints=${endpoint}`], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => (output += chunk.toString('utf8'));
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let finished = false;
    const finish = (spawnError?: Error) => {
      if (finished) return; // 'error' may be followed by 'close'
      finished = true;
      clearTimeout(timer);
      const elapsedSeconds = (performance.now() - started) / 1000;
      appendFileSync(logPath, `$ etcdctl check perf --load=${load} --endpoints=${endpoint}\n${output}\n(${elapsedSeconds.toFixed(1)} s)\n`);
      const result = parseCheckPerfOutput(load, output, elapsedSeconds);
      if (spawnError) result.error = `cannot run ${ETCDCTL_BINARY}: ${spawnError.message}`;
      if (timedOut) {
        result.verdict = 'ERROR';
        result.error = `killed after ${timeoutMs / 1000} s without finishing`;
      }
      resolve(result);
    };
    child.once('error', finish);
    child.once('close', () => finish());
  });
}
