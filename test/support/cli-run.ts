// Runs the `concord` CLI in this process and captures what it prints, for the CLI tests.

import { main } from '../../src/cli/main.ts';

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * One command at a time: the text written to stdout and stderr while it runs is captured. Only
 * strings are: the CLI writes nothing else, while the test runner reports results to its parent
 * as serialized bytes on this same stdout, and a result swallowed here would vanish from the
 * run's counts (a failing test unseen). Those bytes go through untouched.
 */
export async function runCli(args: string[]): Promise<CliOutcome> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (typeof chunk === 'string' ? ((stdout += chunk), true) : (out as (...args: unknown[]) => boolean)(chunk, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => (typeof chunk === 'string' ? ((stderr += chunk), true) : (err as (...args: unknown[]) => boolean)(chunk, ...rest))) as typeof process.stderr.write;
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** The JSON object on the last line of a command's stdout (what `--json` promises, e.g. `concord chaos`). */
export function lastLineJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}
