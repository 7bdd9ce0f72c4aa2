// Child processes of the overload benchmark: each part (backend, front, load generator) runs in
// its own Node.js process, started with a JSON spec, so no part shares an event loop with another.
// A server part prints one JSON line on stdout when it listens; a run-to-completion part prints its
// result as the last line. stderr goes to a log file.

import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { stopProcess } from '../test/support/child-processes.ts';

const READY_TIMEOUT_MS = 20_000;
const STOP_BOUNDS = { graceMs: 3000, killWaitMs: 2000 };

export interface RunningChild<Ready> {
  readonly ready: Ready;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

function spawnWithSpec(file: string, spec: unknown, logPath: string): ChildProcess {
  const logFd = openSync(logPath, 'a');
  try {
    return spawn(process.execPath, [file, '--spec', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', logFd] });
  } finally {
    closeSync(logFd);
  }
}

/** Starts a server part and resolves with its first stdout line, parsed, once it listens. */
export function startChild<Ready>(file: string, spec: unknown, logPath: string): Promise<RunningChild<Ready>> {
  const child = spawnWithSpec(file, spec, logPath);
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => fail(new Error(`${file} did not start within ${READY_TIMEOUT_MS} ms; see ${logPath}`)), READY_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`${file} exited (code ${code}, signal ${signal}) before it was ready; see ${logPath}`)));
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', function onData(chunk: string) {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve({ ready: JSON.parse(stdout.slice(0, newline)) as Ready, child, stop: () => stopProcess(child, STOP_BOUNDS) });
    });
  });
}

/** Runs a part to completion and resolves with its last stdout line, parsed. */
export function runChild<Result>(file: string, spec: unknown, logPath: string, timeoutMs: number): Promise<Result> {
  const child = spawnWithSpec(file, spec, logPath);
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => (stdout += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const lastLine = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && lastLine.startsWith('{')) resolve(JSON.parse(lastLine) as Result);
      else reject(new Error(`${file} ${signal === 'SIGKILL' ? `was killed after ${timeoutMs} ms` : `exited with code ${code}`}; see ${logPath}`));
    });
  });
}

/** True when `moduleUrl` is the file Node.js was started with (the part runs as a child). */
export function isMainModule(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href;
}

/** The --spec JSON of a child's command line. */
export function specFromArgv<Spec>(argv: readonly string[]): Spec {
  const index = argv.indexOf('--spec');
  const text = index >= 0 ? argv[index + 1] : undefined;
  if (text === undefined) throw new Error('usage: --spec JSON');
  return JSON.parse(text) as Spec;
}
