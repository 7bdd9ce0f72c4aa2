// Runs the auto-compaction policy (src/kv/auto-compaction.ts, etcd's --auto-compaction-mode and
// --auto-compaction-retention) on the leader: when the policy names a revision, the leader
// replicates a compaction, so every member compacts the same history at the same point.

import { isKvError } from '../kv/errors.ts';
import { createAutoCompactor } from '../kv/auto-compaction.ts';
import type { AutoCompactionConfig } from '../kv/auto-compaction.ts';
import type { EtcdServiceContext } from '../api/etcd/service-context.ts';
import { MEMBER_REQUESTER } from '../kv/auth/auth-types.ts';

/** How often the loop asks the policy; the policy itself decides when a compaction is due. */
export const AUTO_COMPACTION_CHECK_INTERVAL_MS = 250;

export interface AutoCompactionLogger {
  info(message: string): void;
  warn(message: string): void;
}

export function startAutoCompaction(config: AutoCompactionConfig, context: EtcdServiceContext, logger: AutoCompactionLogger): void {
  const compactor = createAutoCompactor(config, context.clock.nowMs(), context.stateMachine().currentRevision);
  if (!context.member.isLeader()) compactor.pause();
  const stopListening = context.events.onLeaderChange((leader) => {
    if (leader === context.member.memberId) compactor.resume();
    else compactor.pause();
  });
  let compacting = false;
  const timer = context.clock.setInterval(() => {
    if (compacting || !context.member.isLeader()) return;
    const now = context.clock.nowMs();
    const revision = compactor.tick(now, context.stateMachine().currentRevision);
    if (revision === undefined || revision <= context.stateMachine().mvcc.compactRevision) return;
    compacting = true;
    context.backend.write({ type: 'compact', request: { revision } }, MEMBER_REQUESTER).then(
      () => {
        logger.info(`auto-compacted history up to revision ${revision}`);
        compactor.compactionFinished(context.clock.nowMs(), true);
      },
      (error: unknown) => {
        const alreadyDone = isKvError(error, 'CONCORD_E_KV_COMPACTED');
        if (!alreadyDone) logger.warn(`auto-compaction to revision ${revision} failed: ${(error as Error).message}`);
        compactor.compactionFinished(context.clock.nowMs(), alreadyDone);
      },
    ).finally(() => {
      compacting = false;
    });
  }, AUTO_COMPACTION_CHECK_INTERVAL_MS);
  context.onStop(() => {
    context.clock.clearInterval(timer);
    stopListening();
  });
}
