// Cancelling a watch must not fail the other calls in flight on the same client. The etcd3
// client's pool closes every channel to a member when a stream it thinks is alive errors, and a
// cancel is such an error unless the stream is half-closed first (src/coord/etcd-watch.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStore, storeClient } from '../autoscale/controller-harness.ts';

test('watches cancelled while reads are in flight: every read succeeds', async (t) => {
  const store = await startTestStore();
  const client = storeClient(store.endpoint);
  t.after(async () => {
    client.close();
    await store.stop();
  });
  await client.put('/k', 'v');
  for (let round = 0; round < 5; round++) {
    const watches = await Promise.all(Array.from({ length: 5 }, (_, i) => client.watch(`/w/${i}`, {}, { onEvents: () => {} })));
    const reads = Array.from({ length: 20 }, () => client.get('/k'));
    await Promise.all(watches.map((watch) => watch.cancel()));
    const values = await Promise.all([...reads, ...Array.from({ length: 20 }, () => client.get('/k'))]);
    assert.deepEqual(new Set(values.map((kv) => kv?.value)), new Set(['v']));
  }
});
