// Runs the `concord` CLI in this process and captures what it prints, for the CLI tests.

import { main } from '../../src/cli/main.ts';

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** One command at a time: stdout and stderr are swapped for buffers while it runs. */
export async function runCli(args: string[]): Promise<CliOutcome> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
