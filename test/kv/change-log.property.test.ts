// The store keeps, per revision, only which keys changed and rebuilds events from the key
// histories when asked (src/kv/change-log.ts). These tests hold the rebuilt events to the events
// each write produced when it was applied: same changes, same previous key-values, except that a
// change at the compact revision no longer reports what it replaced.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import { MvccStore } from '../../src/kv/mvcc.ts';
import type { KvEvent } from '../../src/kv/types.ts';
import { commandArbitrary } from './arbitraries.ts';
import { b, text } from './helpers.ts';

function withoutPrevious(events: readonly KvEvent[]): KvEvent[] {
  return events.map(({ type, kv }) => ({ type, kv }));
}

test('property: events rebuilt from the log equal those each write produced', () => {
  fc.assert(
    fc.property(fc.array(commandArbitrary, { maxLength: 60 }), (commands) => {
      const machine = new KvStateMachine({ quotaBackendBytes: 50_000 });
      const produced = new Map<number, KvEvent[]>();
      for (const command of commands) {
        const result = machine.apply(command, machine.appliedIndex + 1);
        if (result.status === 'applied' && result.events.length > 0) produced.set(result.revision, structuredClone([...result.events]));
      }
      const compacted = machine.mvcc.compactRevision;
      for (let revision = Math.max(2, compacted); revision <= machine.currentRevision; revision++) {
        const expected = produced.get(revision) ?? [];
        const rebuilt = machine.mvcc.eventsAt(revision);
        assert.deepEqual(rebuilt, revision === compacted ? withoutPrevious(expected) : expected, `revision ${revision}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('a compaction to the current revision drops the previous key-values of its events', () => {
  const store = new MvccStore();
  store.put({ key: b('k'), value: b('1') }); // 2
  store.put({ key: b('k'), value: b('2') }); // 3
  assert.equal(text(store.eventsAt(3)[0]!.prevKv!.value), '1', 'the write\'s own events');
  store.compact(3);
  assert.deepEqual(store.eventsAt(3).map((event) => [event.type, text(event.kv.value), event.prevKv]), [['put', '2', undefined]]);
});

test('a revision that changed several keys gives their events in sub-revision order', () => {
  const store = new MvccStore();
  store.put({ key: b('b'), value: b('old') }); // 2
  store.txn({
    success: [
      { type: 'put', request: { key: b('c'), value: b('1') } },
      { type: 'deleteRange', request: { key: b('b') } },
      { type: 'put', request: { key: b('a'), value: b('2') } },
    ],
  }); // 3
  store.put({ key: b('z'), value: b('later') }); // 4: revision 3's events now come from the log
  const summary = store.eventsAt(3).map((event) => [event.type, text(event.kv.key), event.prevKv && text(event.prevKv.value)]);
  assert.deepEqual(summary, [['put', 'c', undefined], ['delete', 'b', 'old'], ['put', 'a', undefined]]);
  assert.deepEqual(MvccStore.fromState(store.exportState()).eventsAt(3), store.eventsAt(3), 'a restored store rebuilds the same events');
});
