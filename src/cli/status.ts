// `concord status`: the cluster at a glance, read from the store (and the proxies' admin ports):
// store members and leader, control-plane members, proxies and their traffic, each pool's
// backends with their health and drains, shedding, the autoscaler and its kill switch. The same
// data as the dashboard's /api/overview, so it works when no control plane runs (and tells you).
//
// Exit codes: 0 all is well; 3 something needs a look (no store leader, no control-plane member,
// a backend not healthy, a proxy that does not answer, the autoscaler frozen); 1 the store could
// not be read; 2 a bad flag.

import type { Command } from 'commander';
import { readClusterView, type ClusterView } from '../control/cluster-view.ts';
import { addStoreOptions, withStore, type StoreFlagValues } from './store-flags.ts';

export const EXIT_NEEDS_A_LOOK = 3;

/** What needs a look, one line each; empty when all is well. */
export function concernsOf(view: ClusterView): string[] {
  const { overview } = view;
  const concerns: string[] = [];
  if (overview.store.members.length > 0 && !overview.store.members.some((member) => member.isLeader)) concerns.push('the store has no leader');
  if (view.controlMembers.length === 0) concerns.push('no control-plane member is registered: nothing checks backends for the proxies or runs the autoscaler (concord server, or concord control-plane)');
  if (view.configRevision === null) concerns.push('no configuration is applied (concord config apply FILE)');
  for (const pool of overview.pools) {
    for (const backend of pool.backends) if (backend.state !== 'healthy') concerns.push(`pool ${pool.name}: backend ${backend.address} is ${backend.state}`);
    if (pool.shed?.shedding === true) concerns.push(`pool ${pool.name} is shedding load`);
    if (pool.autoscale?.frozen === true && !overview.frozen.global) concerns.push(`pool ${pool.name}: the autoscaler is frozen by ${pool.autoscale.frozenBy ?? 'someone'}: ${pool.autoscale.frozenReason ?? ''}`);
  }
  if (overview.frozen.global) concerns.push(`the autoscaler is frozen for every pool by ${overview.frozen.by ?? 'someone'}: ${overview.frozen.reason ?? ''}`);
  concerns.push(...view.problems);
  return concerns;
}

function formatStatus(view: ClusterView): string {
  const { overview } = view;
  const lines: string[] = [];
  const leader = overview.store.members.find((member) => member.isLeader);
  lines.push(`Store: ${overview.store.members.length} member(s), leader ${leader === undefined ? 'none' : `${leader.name} (${leader.id})`}`);
  for (const member of overview.store.members) lines.push(`  ${member.name || '(not started)'}  ${member.id}  ${member.clientUrls.join(',')}${member.isLeader ? '  leader' : ''}${member.isLearner ? '  learner' : ''}`);
  lines.push(`Control plane: ${view.controlMembers.length} member(s)${view.controlMembers.length === 0 ? '' : `: ${view.controlMembers.map((member) => `${member.name}${member.admin === null ? '' : ` (${member.admin})`}`).join(', ')}`}`);
  lines.push(`Configuration: ${view.configRevision === null ? 'none applied' : `revision ${view.configRevision}`}`);
  lines.push(`Proxies: ${overview.proxies.length}`);
  for (const proxy of overview.proxies) {
    lines.push(`  ${proxy.id}  ${proxy.address}  ${proxy.requestsTotal} requests, ${proxy.requestsPerSecond}/s, p50 ${proxy.p50Ms ?? '-'} ms, p99 ${proxy.p99Ms ?? '-'} ms`);
  }
  for (const pool of overview.pools) {
    lines.push(`Pool ${pool.name} (${pool.balance}): ${pool.backends.filter((backend) => backend.state === 'healthy').length}/${pool.backends.length} healthy`);
    for (const backend of pool.backends) {
      const drain = view.drains.find((candidate) => candidate.pool === pool.name && candidate.backend === backend.address);
      const check = backend.lastCheck === null ? 'not checked yet' : `last check ${backend.lastCheck.ok ? 'passed' : 'failed'} at ${backend.lastCheck.at}: ${backend.lastCheck.detail}`;
      lines.push(`  ${backend.address}  ${backend.state}  weight ${backend.weight}${backend.slowStartFactor < 1 ? ` (slow start ${Math.round(backend.slowStartFactor * 100)}%)` : ''}  in flight ${backend.inflight}  ${check}${drain === undefined ? '' : `  drained by ${drain.by}${drain.reason === '' ? '' : `: ${drain.reason}`}`}`);
    }
    if (pool.shed !== null) {
      const rejected = pool.shed.rejected;
      lines.push(`  shedding: ${pool.shed.shedding ? 'YES' : 'no'} (${pool.shed.algorithm}, limit ${pool.shed.limit}, in flight ${pool.shed.inflight}, queued ${pool.shed.queueLength}; rejected critical ${rejected.critical}, default ${rejected.default}, sheddable ${rejected.sheddable})`);
    }
    if (pool.autoscale !== null) {
      const scale = pool.autoscale;
      lines.push(`  autoscaler: ${scale.actual} instance(s), desired ${scale.desired} (min ${scale.min}, max ${scale.max})${scale.leader === undefined ? ', no leader' : `, led by ${scale.leader}`}${scale.frozen ? `, FROZEN by ${scale.frozenBy ?? '?'}: ${scale.frozenReason ?? ''}` : ''}`);
    }
  }
  const concerns = concernsOf(view);
  lines.push(concerns.length === 0 ? 'All is well.' : `Needs a look (${concerns.length}):`);
  for (const concern of concerns) lines.push(`  - ${concern}`);
  return `${lines.join('\n')}\n`;
}

export function registerStatusCommand(program: Command, setExitCode: (code: number) => void): void {
  addStoreOptions(program.command('status')
    .description('The cluster at a glance: store members and leader, control plane, proxies, pools with their backends, shedding and autoscaler.')
    .option('--json', 'print one JSON object: {overview (as GET /api/overview), configRevision, controlMembers, drains, concerns}'))
    .addHelpText('after', '\nExit codes: 0 all is well; 3 something needs a look (listed at the end); 1 the store could not be read; 2 a bad flag.')
    .action(async (flags: StoreFlagValues & { json?: boolean }) => {
      await withStore('status', flags, setExitCode, async (store) => {
        const view = await readClusterView(store, store.cluster, Date.now());
        const concerns = concernsOf(view);
        process.stdout.write(flags.json === true ? `${JSON.stringify({ ...view, concerns })}\n` : formatStatus(view));
        if (concerns.length > 0) setExitCode(EXIT_NEEDS_A_LOOK);
      });
    });
}
