// `concord snapshot restore`: turns a file saved with `etcdctl snapshot save` from a Concord member
// into a new data dir, with etcd's flag names (see server/snapshot-restore.ts for what it does).

import type { Command } from 'commander';
import { ConfigError, SERVER_SETTINGS, resolveServerConfig, settingsFromFlags } from '../server/server-config.ts';
import { restoreSnapshot } from '../server/snapshot-restore.ts';

/** The server settings restore takes: those that make the new member's identity, and its data dir. */
const RESTORE_SETTINGS = ['name', 'dataDir', 'initialCluster', 'initialClusterToken', 'initialAdvertisePeerUrls'] as const;

function camelFlag(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

export function registerSnapshotCommand(program: Command, setExitCode: (code: number) => void): void {
  const snapshot = program
    .command('snapshot')
    .description('Work with snapshot files saved by `etcdctl snapshot save` from a Concord member.');
  const restore = snapshot
    .command('restore <file>')
    .description(
      'Create a new data dir holding the state saved in <file>, with a new cluster identity from the flags below; ' +
      'start `concord server` on it with the same flags. Refuses a --data-dir that exists and is not empty.',
    );
  const specs = SERVER_SETTINGS.filter((spec) => (RESTORE_SETTINGS as readonly string[]).includes(spec.key));
  for (const spec of specs) restore.option(`--${spec.flag} <value>`, spec.description);
  restore.option('--skip-hash-check', "restore a file without checking its SHA-256 trailer (etcd's flag)", false);
  restore.action(async (file: string, options: Record<string, string | boolean | undefined>) => {
    const flags: Record<string, string | undefined> = {};
    for (const spec of specs) flags[spec.key] = options[camelFlag(spec.flag)] as string | undefined;
    try {
      const config = resolveServerConfig({}, settingsFromFlags(flags));
      const summary = await restoreSnapshot({ snapshotPath: file, config, skipHashCheck: options.skipHashCheck === true });
      process.stdout.write(
        `restored ${file} into ${summary.dataDir}: revision ${summary.revision}, ${summary.keyCount} keys; ` +
        `member ${config.name} (${summary.memberId.toString(16)}) of cluster ${summary.clusterId.toString(16)}\n`,
      );
    } catch (error) {
      const known = error instanceof ConfigError || String((error as { code?: unknown }).code ?? '').startsWith('CONCORD_E_');
      process.stderr.write(`concord snapshot restore: ${known ? '' : 'unexpected error: '}${(error as Error).message}\n`);
      setExitCode(known ? 2 : 1);
    }
  });
}
