// `concord pool list|drain|undrain`: the pools as the cluster runs them, and operators' drains.
// A drain is the key /concord/drains/<pool>/<backend> in the store: every store-fed proxy stops
// sending the backend new requests and lets its in-flight ones finish; undrain deletes the key.
// The dashboard's drain button and etcdctl do the same.
//
// Exit codes: 0 done; 2 a bad flag, or a pool or backend the applied configuration does not have;
// 1 the store could not be read or written.

import type { Command } from 'commander';
import { readClusterView } from '../control/cluster-view.ts';
import { readAppliedConfig } from '../control/config-store.ts';
import { DrainError, setDrain } from '../control/drains.ts';
import { actingOperator } from './operator.ts';
import { addStoreOptions, withStore, type StoreFlagValues } from './store-flags.ts';

interface DrainFlags extends StoreFlagValues {
  reason?: string;
  by?: string;
}

export function registerPoolCommand(program: Command, setExitCode: (code: number) => void): void {
  const pool = program.command('pool').description('The pools and their backends; drain a backend out of rotation on every proxy, or put it back.');
  const exitCodes = '\nExit codes: 0 done; 2 a bad flag, or a pool or backend the applied configuration does not have; 1 the store could not be read or written.';

  addStoreOptions(pool.command('list')
    .description('Each pool with its backends: health (as the proxies see it), weight, in-flight requests, drains, last check.')
    .option('--json', 'print {"pools": [...]}: each pool as in GET /api/overview, with "drains"'))
    .addHelpText('after', exitCodes)
    .action(async (flags: StoreFlagValues & { json?: boolean }) => {
      await withStore('pool list', flags, setExitCode, async (store) => {
        const view = await readClusterView(store, undefined, Date.now());
        const pools = view.overview.pools.map((entry) => ({ ...entry, drains: view.drains.filter((drain) => drain.pool === entry.name) }));
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify({ pools })}\n`);
          return;
        }
        if (pools.length === 0) process.stdout.write(view.configRevision === null ? 'no configuration is applied (concord config apply FILE)\n' : 'the applied configuration has no pools\n');
        for (const entry of pools) {
          process.stdout.write(`${entry.name} (${entry.balance}${entry.autoscale === null ? '' : `, autoscaled ${entry.autoscale.min}-${entry.autoscale.max}`}${entry.shed === null ? '' : `, shed ${entry.shed.algorithm}`})\n`);
          for (const backend of entry.backends) {
            const drain = entry.drains.find((candidate) => candidate.backend === backend.address);
            process.stdout.write(`  ${backend.address.padEnd(22)} ${backend.state.padEnd(9)} weight ${backend.weight}  in flight ${backend.inflight}${drain === undefined ? '' : `  drained by ${drain.by}${drain.reason === '' ? '' : `: ${drain.reason}`}`}\n`);
          }
        }
        for (const problem of view.problems) process.stderr.write(`concord pool list: ${problem}\n`);
      });
    });

  for (const action of ['drain', 'undrain'] as const) {
    const command = pool.command(action)
      .description(action === 'drain'
        ? 'Take a backend out of rotation on every store-fed proxy: no new requests, in-flight ones finish.'
        : 'Put a drained backend back in rotation on every store-fed proxy (through slow start).')
      .argument('<pool>', 'the pool\'s name')
      .argument('<backend>', 'the backend\'s HOST:PORT, as `concord pool list` shows it')
      .option('--by <who>', 'who does it (default: the store user of --user, else user@host; with --user the store user is recorded)');
    if (action === 'drain') command.option('--reason <text>', 'why (recorded with the drain and in the timeline)');
    addStoreOptions(command).addHelpText('after', exitCodes)
      .action(async (poolName: string, backend: string, flags: DrainFlags) => {
        await withStore(`pool ${action}`, flags, setExitCode, async (store) => {
          const applied = await readAppliedConfig(store);
          try {
            await setDrain(store, applied?.config, { pool: poolName, backend, by: actingOperator(store, flags.by), draining: action === 'drain', atMs: Date.now(), ...(flags.reason === undefined ? {} : { reason: flags.reason }) }, 'cli');
          } catch (error) {
            if (!(error instanceof DrainError)) throw error;
            process.stderr.write(`concord pool ${action}: ${error.message}\n`);
            setExitCode(2);
            return;
          }
          process.stdout.write(action === 'drain'
            ? `draining ${backend} of pool ${poolName}: every store-fed proxy stops sending it new requests (concord pool undrain ${poolName} ${backend} to put it back)\n`
            : `${backend} of pool ${poolName} is back in rotation\n`);
        });
      });
  }
}
