// The `concord` command line: one file per command; this one only assembles them.

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerServerCommand } from './server.ts';
import { registerSnapshotCommand } from './snapshot.ts';
import { registerSimCommand } from './sim.ts';
import { registerBenchCommand } from './bench.ts';
import { registerChaosCommand } from './chaos.ts';
import { registerProxyCommand } from './proxy.ts';
import { registerAutoscaleCommand } from './autoscale.ts';
import { registerControllerCommand } from './controller.ts';
import { registerConfigCommand } from './config.ts';
import { registerControlPlaneCommand } from './control-plane.ts';
import { registerStatusCommand } from './status.ts';
import { registerEventsCommand } from './events.ts';
import { registerReportCommand } from './report.ts';
import { registerPoolCommand } from './pool.ts';
import { registerMemberCommand } from './member.ts';

export const EXIT_OK = 0;
export const EXIT_VIOLATION = 1;
export const EXIT_USAGE = 2;

/** Concord's version, from the package.json next to src/ and dist/ alike. */
export function concordVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('concord')
    .description('Concord keeps a fleet of servers healthy without a human in the loop.')
    .version(concordVersion(), '--version', 'print Concord\'s version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerSimCommand(program, setExitCode);
  registerServerCommand(program, setExitCode);
  registerSnapshotCommand(program, setExitCode);
  registerProxyCommand(program, setExitCode);
  registerBenchCommand(program, setExitCode);
  registerChaosCommand(program, setExitCode);
  registerAutoscaleCommand(program, setExitCode);
  registerControllerCommand(program, setExitCode);
  registerConfigCommand(program, setExitCode);
  registerControlPlaneCommand(program, setExitCode);
  registerStatusCommand(program, setExitCode);
  registerEventsCommand(program, setExitCode);
  registerReportCommand(program, setExitCode);
  registerPoolCommand(program, setExitCode);
  registerMemberCommand(program, setExitCode);
  return program;
}

/** Runs the CLI with the given arguments and returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = EXIT_OK;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with exit code 0; usage errors with 1, which we map to 2.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    throw error;
  }
  return exitCode;
}
