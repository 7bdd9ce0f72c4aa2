// `concord autoscale freeze|unfreeze|status`: the autoscaler's kill switch and what it is doing.
// The kill switch is a plain key in the store, so etcdctl works as well:
//   etcdctl put /concord/autoscale/freeze '{"by":"alice","reason":"incident 4711"}'   (or any text)
//   etcdctl del /concord/autoscale/freeze

import type { Command } from 'commander';
import { autoscaleReport, freeze, unfreeze, type AutoscaleReport } from '../autoscale/controller/kill-switch.ts';
import type { FreezeRecord } from '../autoscale/policy/types.ts';
import { actingOperator } from './operator.ts';
import { addStoreOptions, exitCodeFor, openStore, type StoreFlagValues } from './store-flags.ts';

function describeFreeze(record: FreezeRecord): string {
  const when = record.atMs > 0 ? ` at ${new Date(record.atMs).toISOString()}` : '';
  return `by ${record.by}${when}: ${record.reason}`;
}

async function withStore(values: StoreFlagValues, setExitCode: (code: number) => void, run: (store: ReturnType<typeof openStore>) => Promise<void>): Promise<void> {
  let store: ReturnType<typeof openStore> | undefined;
  try {
    store = openStore(values);
    await run(store);
  } catch (error) {
    process.stderr.write(`concord autoscale: ${(error as Error).message}\n`);
    setExitCode(exitCodeFor(error));
  } finally {
    store?.close();
  }
}

export function registerAutoscaleCommand(program: Command, setExitCode: (code: number) => void): void {
  const autoscale = program.command('autoscale').description('The autoscaler\'s kill switch and status (keys under /concord/autoscale/ in the store).');

  addStoreOptions(autoscale.command('freeze')
    .description('Stop the autoscaler from acting, for every pool or one; takes effect within one control period, on whichever controller leads.')
    .option('--pool <name>', 'freeze only this pool')
    .requiredOption('--reason <text>', 'why (recorded with the freeze, and in the event timeline)')
    .option('--by <who>', 'who freezes (default: the store user of --user, else user@host; with --user the store user is recorded)'))
    .action(async (options: StoreFlagValues & { pool?: string; reason: string; by?: string }) => {
      await withStore(options, setExitCode, async (store) => {
        const result = await freeze(store, { pool: options.pool, by: actingOperator(store, options.by), reason: options.reason, atMs: Date.now() });
        const scope = options.pool === undefined ? 'every pool' : `pool ${options.pool}`;
        const replaced = result.replaced === undefined ? '' : ` (replacing the freeze ${describeFreeze(result.replaced)})`;
        process.stdout.write(`frozen ${scope} (${result.key})${replaced}: the leader takes no action from its next control period on\n`);
      });
    });

  addStoreOptions(autoscale.command('unfreeze')
    .description('Let the autoscaler act again, for every pool or one.')
    .option('--pool <name>', 'unfreeze only this pool')
    .option('--by <who>', 'who unfreezes (default: the store user of --user, else user@host; with --user the store user is recorded)'))
    .action(async (options: StoreFlagValues & { pool?: string; by?: string }) => {
      await withStore(options, setExitCode, async (store) => {
        const result = await unfreeze(store, { pool: options.pool, by: actingOperator(store, options.by), atMs: Date.now() });
        const scope = options.pool === undefined ? 'every pool' : `pool ${options.pool}`;
        if (result.removed === undefined) process.stdout.write(`${scope}: not frozen (${result.key} is not set); nothing to do\n`);
        else process.stdout.write(`unfrozen ${scope} (was frozen ${describeFreeze(result.removed)})\n`);
        const report = await autoscaleReport(store);
        const still = [
          ...(report.globalFreeze === undefined ? [] : [`every pool, ${describeFreeze(report.globalFreeze)}`]),
          ...report.pools.filter((pool) => pool.freeze !== undefined).map((pool) => `pool ${pool.pool}, ${describeFreeze(pool.freeze!)}`),
        ];
        for (const line of still) process.stdout.write(`still frozen: ${line}\n`);
      });
    });

  addStoreOptions(autoscale.command('status')
    .description('Who leads, what is frozen, and per pool the desired and actual instances and the last decision\'s reasons.')
    .option('--pool <name>', 'only this pool')
    .option('--json', 'print the report as one JSON object'))
    .action(async (options: StoreFlagValues & { pool?: string; json?: boolean }) => {
      await withStore(options, setExitCode, async (store) => {
        const report = await autoscaleReport(store);
        if (options.pool !== undefined) report.pools = report.pools.filter((pool) => pool.pool === options.pool);
        process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report, Date.now()));
      });
    });
}

export function formatReport(report: AutoscaleReport, nowMs: number): string {
  const lines: string[] = [];
  const leader = report.leader;
  lines.push(leader === undefined
    ? 'leader: none (no controller is running, or an election is under way)'
    : `leader: ${leader.name}${leader.host === undefined ? '' : ` on ${leader.host}`}${leader.pid === undefined ? '' : ` (pid ${leader.pid})`}, since ${new Date(leader.sinceMs).toISOString()}, fencing token ${leader.fencingToken}`);
  lines.push(`frozen (every pool): ${report.globalFreeze === undefined ? 'no' : `yes, ${describeFreeze(report.globalFreeze)}`}`);
  if (report.pools.length === 0) lines.push('pools: none recorded yet');
  for (const pool of report.pools) {
    const status = pool.status;
    const ready = pool.instances.filter((i) => i.readyAtMs !== undefined && i.healthy && i.drainingSinceMs === undefined).length;
    const draining = pool.instances.filter((i) => i.drainingSinceMs !== undefined).length;
    const desired = status === undefined ? 'desired ?' : `desired ${status.desired}`;
    lines.push(`pool ${pool.pool}: ${desired}, actual ${pool.instances.length} (ready ${ready}, draining ${draining})${pool.freeze === undefined ? '' : `; frozen ${describeFreeze(pool.freeze)}`}`);
    if (status !== undefined) {
      lines.push(`  last decision: #${status.sequence} by ${status.leader} ${Math.max(0, Math.round((nowMs - status.atMs) / 1000))} s ago${status.dryRun ? ' (dry run)' : ''}${status.frozen === undefined ? '' : `, frozen (${status.frozen.scope}) by ${status.frozen.by}`}`);
      for (const reason of status.reasons) lines.push(`    ${reason}`);
    }
    for (const action of pool.pendingActions) lines.push(`  in flight: ${action.kind} ${action.requestId} by ${action.leader} (token ${action.fencingToken})`);
  }
  for (const problem of report.problems) lines.push(`problem: ${problem}`);
  return `${lines.join('\n')}\n`;
}
