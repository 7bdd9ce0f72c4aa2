// The event timeline in a real store: keys sort by time, reads take a time window, events commit
// with the writes they report, and retention keeps the newest maxEvents.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENTS_PREFIX, EventTimeline, PRUNE_BATCH_MAX, eventKeyAt, readEvents } from '../../src/control/events.ts';
import { startTestStore, storeClient } from '../autoscale/controller-harness.ts';

test('keys sort by time; a window reads [since, until); retention deletes the oldest beyond maxEvents', async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const client = storeClient(store.endpoint);
  t.after(() => client.close());
  assert.equal(eventKeyAt(1_700_000_000_123, 'ctl-a', 7), '/concord/events/001700000000123-ctl-a-000007');
  assert.ok(eventKeyAt(999, 'z', 999_999) < eventKeyAt(1_000, 'a', 0), 'time first, then writer');

  const timeline = new EventTimeline(client, 'ctl-a', { maxEvents: 10 });
  const base = 1_700_000_000_000;
  await timeline.write(Array.from({ length: 25 }, (_, i) => ({ atMs: base + i * 1_000, source: 'test', kind: 'tick', message: `event ${i}` })));
  await client.put(`${EVENTS_PREFIX}000-not-json`, '{'); // not an event: skipped by reads, counted by retention
  const window = await readEvents(client, { sinceMs: base + 5_000, untilMs: base + 8_000 });
  assert.deepEqual(window.map((e) => e.message), ['event 5', 'event 6', 'event 7']);
  assert.equal(window[0]!.by, 'ctl-a');

  assert.equal(await timeline.prune(), 16, '26 keys, 10 kept');
  const kept = await readEvents(client);
  assert.deepEqual(kept.map((e) => e.message), Array.from({ length: 10 }, (_, i) => `event ${i + 15}`));
  assert.equal(await timeline.prune(), 0);
  assert.ok(PRUNE_BATCH_MAX >= 100);

  const other = new EventTimeline(client, 'ctl-b');
  const committed = await client.txn({ compare: [{ key: '/nope', target: 'version', result: '>', value: 0n }], success: [other.op({ atMs: base, source: 'test', kind: 'x', message: 'never' })] });
  assert.equal(committed.succeeded, false);
  assert.equal((await readEvents(client)).filter((e) => e.by === 'ctl-b').length, 0, 'an event in a failed transaction is not written');
  assert.throws(() => new EventTimeline(client, 'has space'), /letters, digits/);
});
