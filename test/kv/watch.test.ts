// WatchHub against etcd's watch semantics (the "etcd3 API" watch section, and storage/mvcc's
// watchable_store.go): synced watchers get each new revision's events; watchers starting in the
// past catch up from history in bounded batches; a compacted start revision cancels the watcher
// with the compact revision; filters and prevKv shape what is sent; IDs are per stream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MvccStore } from '../../src/kv/mvcc.ts';
import { WatchHub } from '../../src/kv/watch.ts';
import type { WatchResponse } from '../../src/kv/watch.ts';
import type { KvEvent } from '../../src/kv/types.ts';
import { prefixRangeEnd } from '../../src/kv/key-range.ts';
import { b, text } from './helpers.ts';

/** Writes through the store and tells the hub, as the shell does after each apply. */
class Harness {
  readonly store = new MvccStore();
  readonly hub: WatchHub;
  readonly sent: WatchResponse[] = [];

  constructor(limits: ConstructorParameters<typeof WatchHub>[1] = {}) {
    this.hub = new WatchHub(this.store, limits);
  }

  put(key: string, value = 'v'): void {
    this.store.put({ key: b(key), value: b(value) });
    this.notify();
  }

  del(key: string): void {
    this.store.deleteRange({ key: b(key) });
    this.notify();
  }

  notify(): void {
    const revision = this.store.currentRevision;
    this.sent.push(...this.hub.eventsApplied(revision, this.store.eventsAt(revision)));
  }

  drain(): void {
    for (let pass = 0; this.hub.unsyncedCount > 0; pass++) {
      assert.ok(pass < 10_000, 'catch-up must make progress');
      this.sent.push(...this.hub.catchUp());
    }
  }

  eventsOf(watchId: bigint, streamId = 1): string[] {
    return this.sent
      .filter((response) => response.watchId === watchId && response.streamId === streamId)
      .flatMap((response) => response.events.map(describe));
  }
}

function describe(event: KvEvent): string {
  return `${event.type} ${text(event.kv.key)}@${event.kv.modRevision}${event.prevKv ? ` prev=${text(event.prevKv.value)}` : ''}`;
}

test('a watch from now on is created at the current revision and gets matching events as they apply', () => {
  const h = new Harness();
  h.put('a');
  const created = h.hub.create({ streamId: 1, key: b('a') });
  assert.deepEqual(created, {
    streamId: 1, watchId: 0n, header: { revision: 2 }, created: true, canceled: false, compactRevision: 0, cancelReason: '', events: [],
  });
  h.put('a', 'x');
  h.put('b');
  h.del('a');
  assert.deepEqual(h.eventsOf(0n), ['put a@3', 'delete a@5']);
  assert.deepEqual(h.sent.map((response) => response.header.revision), [3, 5]);
});

test('watch IDs count from 0 per stream; a client-chosen ID must be free on its stream', () => {
  const h = new Harness();
  assert.equal(h.hub.create({ streamId: 1, key: b('a') }).watchId, 0n);
  assert.equal(h.hub.create({ streamId: 1, key: b('a'), watchId: 1n }).watchId, 1n);
  assert.equal(h.hub.create({ streamId: 1, key: b('a') }).watchId, 2n, 'auto IDs skip IDs in use');
  assert.equal(h.hub.create({ streamId: 2, key: b('a') }).watchId, 0n);
  const duplicate = h.hub.create({ streamId: 1, key: b('a'), watchId: 1n });
  assert.deepEqual([duplicate.created, duplicate.canceled, duplicate.watchId, duplicate.cancelReason], [
    true, true, -1n, 'mvcc: duplicate watch ID provided on the WatchStream',
  ]);
  assert.equal(h.hub.watcherCount, 4);
});

test('prevKv only when asked; noPut and noDelete filter events out', () => {
  const h = new Harness();
  h.put('a', 'old');
  h.hub.create({ streamId: 1, key: b('a'), prevKv: true });
  h.hub.create({ streamId: 1, key: b('a'), filters: ['noPut'] });
  h.hub.create({ streamId: 1, key: b('a'), filters: ['noDelete'] });
  h.put('a', 'new');
  h.del('a');
  assert.deepEqual(h.eventsOf(0n), ['put a@3 prev=old', 'delete a@4 prev=new']);
  assert.deepEqual(h.eventsOf(1n), ['delete a@4']);
  assert.deepEqual(h.eventsOf(2n), ['put a@3']);
});

test('range and from-key watchers see every key they cover', () => {
  const h = new Harness();
  h.hub.create({ streamId: 1, key: b('p/'), rangeEnd: prefixRangeEnd(b('p/')) });
  h.hub.create({ streamId: 1, key: b('m'), rangeEnd: new Uint8Array([0]) });
  for (const key of ['a', 'p/1', 'q', 'p/2', 'p']) h.put(key);
  assert.deepEqual(h.eventsOf(0n), ['put p/1@3', 'put p/2@5']);
  assert.deepEqual(h.eventsOf(1n), ['put p/1@3', 'put q@4', 'put p/2@5', 'put p@6']);
});

test('all events of one revision arrive in one response, in sub-revision order', () => {
  const h = new Harness();
  h.hub.create({ streamId: 1, key: b('a'), rangeEnd: b('z') });
  h.store.txn({ success: [{ type: 'put', request: { key: b('c'), value: b('1') } }, { type: 'put', request: { key: b('b'), value: b('1') } }] });
  h.notify();
  assert.equal(h.sent.length, 1);
  assert.deepEqual(h.eventsOf(0n), ['put c@2', 'put b@2']);
});

test('a watcher starting in the past replays history in order, in bounded batches, then goes live', () => {
  const h = new Harness({ maxEventRevisionsPerBatch: 2 });
  for (let i = 0; i < 5; i++) h.put('k', `${i}`); // revisions 2..6
  h.put('other');
  const created = h.hub.create({ streamId: 1, key: b('k'), startRevision: 3 });
  assert.equal(created.header.revision, 7);
  assert.equal(h.hub.unsyncedCount, 1);
  h.put('k', 'live'); // revision 8: the unsynced watcher must not get it twice
  const first = h.hub.catchUp();
  assert.deepEqual(first.flatMap((response) => response.events.map(describe)), ['put k@3', 'put k@4']);
  assert.equal(first[0]!.header.revision, 8, 'catch-up responses carry the current revision, as etcd');
  h.sent.push(...first);
  h.drain();
  assert.deepEqual(h.eventsOf(0n), ['put k@3', 'put k@4', 'put k@5', 'put k@6', 'put k@8']);
  h.put('k', 'after');
  assert.deepEqual(h.eventsOf(0n).slice(-1), ['put k@9']);
});

test('scanning is bounded even when nothing matches', () => {
  const h = new Harness({ maxScannedRevisionsPerSync: 3 });
  for (let i = 0; i < 10; i++) h.put('noise');
  h.hub.create({ streamId: 1, key: b('k'), startRevision: 2 });
  const passes: number[] = [];
  while (h.hub.unsyncedCount > 0) passes.push(h.hub.catchUp().length);
  assert.deepEqual(passes, [0, 0, 0, 0], '10 revisions at 3 per pass');
});

test('a watcher whose start revision was compacted is cancelled with the compact revision', () => {
  const h = new Harness();
  for (let i = 0; i < 4; i++) h.put('k', `${i}`); // 2..5
  h.store.compact(4);
  const created = h.hub.create({ streamId: 1, key: b('k'), startRevision: 2 });
  assert.equal(created.canceled, false, 'etcd creates the watcher and cancels it in-band');
  const [cancelled] = h.hub.catchUp();
  assert.deepEqual(cancelled, {
    streamId: 1, watchId: 0n, header: { revision: 5 }, created: false, canceled: true, compactRevision: 4, cancelReason: '', events: [],
  });
  assert.equal(h.hub.watcherCount, 0);
  h.hub.create({ streamId: 1, key: b('k'), startRevision: 4 });
  h.drain();
  assert.deepEqual(h.eventsOf(1n), ['put k@4', 'put k@5'], 'the compact revision itself can still be watched');
});

test('a watcher starting in the future skips what comes before its start', () => {
  const h = new Harness();
  h.hub.create({ streamId: 1, key: b('k'), startRevision: 4 });
  h.put('k'); // 2
  h.put('k'); // 3
  h.put('k'); // 4
  assert.deepEqual(h.eventsOf(0n), ['put k@4']);
});

test('cancel answers with a cancelled response; closing a stream forgets its watchers', () => {
  const h = new Harness();
  h.hub.create({ streamId: 1, key: b('a') });
  h.hub.create({ streamId: 1, key: b('b') });
  h.hub.create({ streamId: 2, key: b('a') });
  const cancelled = h.hub.cancel(1, 0n)!;
  assert.deepEqual([cancelled.canceled, cancelled.watchId, cancelled.header.revision], [true, 0n, 1]);
  assert.equal(h.hub.cancel(1, 0n), undefined);
  assert.equal(h.hub.closeStream(1), 1);
  h.put('a');
  assert.deepEqual(h.sent.map((response) => [response.streamId, response.watchId]), [[2, 0n]]);
  assert.equal(h.hub.watcherCount, 1);
});

test('the watcher limits refuse new watches with a reason', () => {
  const h = new Harness({ maxWatchers: 3, maxWatchersPerStream: 2 });
  h.hub.create({ streamId: 1, key: b('a') });
  h.hub.create({ streamId: 1, key: b('a') });
  const perStream = h.hub.create({ streamId: 1, key: b('a') });
  assert.equal(perStream.canceled, true);
  assert.match(perStream.cancelReason, /too many watchers/);
  h.hub.create({ streamId: 2, key: b('a') });
  assert.equal(h.hub.create({ streamId: 3, key: b('a') }).canceled, true);
  assert.equal(h.hub.watcherCount, 3);
});

test('progress notifications go to synced watchers that asked; a progress request needs the whole stream synced', () => {
  const h = new Harness();
  h.put('k');
  h.put('k');
  h.hub.create({ streamId: 1, key: b('k'), progressNotify: true });
  h.hub.create({ streamId: 1, key: b('x') });
  h.hub.create({ streamId: 2, key: b('k'), startRevision: 2, progressNotify: true });
  assert.deepEqual(h.hub.progress().map((response) => [response.streamId, response.watchId, response.header.revision, response.events.length]), [[1, 0n, 3, 0]]);
  assert.deepEqual(h.hub.requestProgress(1), {
    streamId: 1, watchId: -1n, header: { revision: 3 }, created: false, canceled: false, compactRevision: 0, cancelReason: '', events: [],
  });
  assert.equal(h.hub.requestProgress(2), undefined, 'stream 2 is still catching up');
  h.drain();
  assert.equal(h.hub.requestProgress(2)!.header.revision, 3);
});

test('a skipped revision makes synced watchers catch up from history instead of losing events', () => {
  const h = new Harness();
  h.hub.create({ streamId: 1, key: b('k') });
  h.store.put({ key: b('k'), value: b('missed') }); // 2, never announced
  h.put('k', 'seen'); // 3: the hub notices the gap
  assert.equal(h.hub.unsyncedCount, 1);
  h.drain();
  h.sent.push(...h.hub.eventsApplied(3, h.store.eventsAt(3)));
  h.put('k', 'live'); // 4
  assert.deepEqual(h.eventsOf(0n), ['put k@2', 'put k@3', 'put k@4']);
});

test('after a restore every watcher catches up from the new store', () => {
  const h = new Harness();
  h.hub.create({ streamId: 1, key: b('k') });
  const replacement = MvccStore.fromState(h.store.exportState());
  replacement.put({ key: b('k'), value: b('1') }); // 2
  replacement.put({ key: b('k'), value: b('2') }); // 3
  h.hub.restored(replacement);
  const responses: WatchResponse[] = [];
  while (h.hub.unsyncedCount > 0) responses.push(...h.hub.catchUp());
  assert.deepEqual(responses.flatMap((response) => response.events.map(describe)), ['put k@2', 'put k@3']);
});

type Write = { kind: 'put'; key: string } | { kind: 'delete'; key: string } | { kind: 'txn'; keys: string[] };
type Step =
  | { kind: 'write'; write: Write }
  | { kind: 'watch'; key: string; prefix: boolean; back: number; prevKv: boolean }
  | { kind: 'catchUp' }
  | { kind: 'skipNotify'; write: Write };

const watchKey = fc.constantFrom('a', 'b', 'c');
const write: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), key: watchKey }),
  fc.record({ kind: fc.constant('delete' as const), key: watchKey }),
  fc.record({ kind: fc.constant('txn' as const), keys: fc.uniqueArray(watchKey, { minLength: 1, maxLength: 3 }) }),
);
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), write }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('watch' as const), key: fc.constantFrom('a', 'b', ''), prefix: fc.boolean(), back: fc.nat(12), prevKv: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'catchUp' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('skipNotify' as const), write }) },
);

test('property: a watcher started at revision r receives exactly the history from r, in order, once', () => {
  fc.assert(
    fc.property(
      fc.array(stepArbitrary, { maxLength: 50 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 4 }),
      (steps, maxEventRevisionsPerBatch, maxScannedRevisionsPerSync) => {
        const h = new Harness({ maxEventRevisionsPerBatch, maxScannedRevisionsPerSync, maxWatchersPerSync: 2 });
        const history: KvEvent[] = [];
        const watches: { id: bigint; key: string; prefix: boolean; start: number; prevKv: boolean }[] = [];
        const apply = (w: Write, notify: boolean) => {
          const before = h.store.currentRevision;
          if (w.kind === 'put') h.store.put({ key: b(w.key), value: b(`${before}`) });
          if (w.kind === 'delete') h.store.deleteRange({ key: b(w.key) });
          if (w.kind === 'txn') h.store.txn({ success: w.keys.map((key) => ({ type: 'put' as const, request: { key: b(key), value: b(`${before}`) } })) });
          if (h.store.currentRevision === before) return;
          history.push(...h.store.eventsAt(h.store.currentRevision));
          if (notify) h.notify();
        };
        for (const s of steps) {
          if (s.kind === 'write') apply(s.write, true);
          if (s.kind === 'skipNotify') apply(s.write, false);
          if (s.kind === 'catchUp') h.sent.push(...h.hub.catchUp());
          if (s.kind === 'watch') {
            const start = Math.max(0, h.store.currentRevision + 1 - s.back);
            const rangeEnd = s.key === '' ? new Uint8Array([0]) : s.prefix ? prefixRangeEnd(b(s.key)) : undefined;
            const key = s.key === '' ? new Uint8Array([0]) : b(s.key);
            const { watchId } = h.hub.create({ streamId: 1, key, rangeEnd, startRevision: start, prevKv: s.prevKv });
            watches.push({ id: watchId, key: s.key, prefix: s.prefix, start: start === 0 ? h.store.currentRevision + 1 : start, prevKv: s.prevKv });
          }
        }
        // Announce anything a skipped notification left pending, then let everyone catch up.
        h.sent.push(...h.hub.eventsApplied(h.store.currentRevision, h.store.eventsAt(h.store.currentRevision)));
        h.drain();
        for (const w of watches) {
          const expected = history
            .filter((event) => event.kv.modRevision >= w.start)
            .filter((event) => w.key === '' || (w.prefix ? text(event.kv.key).startsWith(w.key) : text(event.kv.key) === w.key))
            .map((event) => describe(w.prevKv ? event : { type: event.type, kv: event.kv }));
          assert.deepEqual(h.eventsOf(w.id), expected, `watch ${w.id} from ${w.start} on ${JSON.stringify(w.key)}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});
