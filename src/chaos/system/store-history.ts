// The store's history under /concord/, read back at the end of a system chaos run: every put and
// delete of the autoscaler's keys (election, kill switch, action intents, instance records) and of
// the event timeline, in revision order. The revision is the store's commit order, so the checks
// judge what happened in the order it happened, whatever the writers' clocks said.
//
// The run's store never compacts (no --auto-compaction-retention), so a watch from revision 1
// replays everything; a sentinel key written last tells when the replay is complete.

import type { CoordStore } from '../../coord/coord-store.ts';

export interface StoreChange {
  revision: bigint;
  type: 'put' | 'delete';
  key: string;
  /** Empty for a delete. */
  value: string;
}

export const WATCHED_PREFIX = '/concord/';
const SENTINEL_KEY = '/concord/chaos/history-end';

/** Every change under /concord/ from revision 1 to now; throws when the replay does not finish within timeoutMs. */
export async function readStoreHistory(store: CoordStore, timeoutMs: number): Promise<StoreChange[]> {
  const changes: StoreChange[] = [];
  const { revision: sentinelRevision } = await store.put(SENTINEL_KEY, String(Date.now()));
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  let failure: Error | undefined;
  const watch = await store.watch(WATCHED_PREFIX, { prefix: true, fromRevision: 1n }, {
    onEvents: (events) => {
      for (const event of events) {
        if (event.kv.modRevision >= sentinelRevision) {
          done();
          return;
        }
        changes.push({ revision: event.kv.modRevision, type: event.type, key: event.kv.key, value: event.type === 'put' ? event.kv.value : '' });
      }
    },
    onError: (error) => {
      failure = error;
      done();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const outcome = await Promise.race([finished.then(() => 'done' as const), timedOut]);
  clearTimeout(timer);
  await watch.cancel().catch(() => undefined);
  if (failure !== undefined) throw failure;
  if (outcome === 'timeout') throw new Error(`the store's history was not replayed within ${timeoutMs} ms (${changes.length} changes read)`);
  return changes;
}
