// Property test of RaftLog against a reference model: a plain array of terms. Random sequences of
// appends (with truncation), AppendEntries as a follower sees them, persisting (stableTo, also with
// stale arguments), commits and compactions must leave the log's lastIndex, terms, commit index and
// its split between storage and the unstable suffix consistent with the model.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RaftLog } from '../../src/consensus/log.ts';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Entry } from '../../src/consensus/types.ts';
import { EMPTY_BYTES, RaftError } from '../../src/consensus/types.ts';

const CONF_STATE = { voters: [1n, 2n, 3n], learners: [] };

// Operations carry raw random numbers; they are mapped onto valid arguments for the current state
// when applied, so that every generated sequence is meaningful.
type Operation =
  | { kind: 'append'; at: number; count: number; termBump: number }
  | { kind: 'maybeAppend'; at: number; matching: number; fresh: number; commit: number }
  | { kind: 'persist'; fraction: number }
  | { kind: 'staleStableTo' }
  | { kind: 'commit'; to: number }
  | { kind: 'compact'; at: number };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }), termBump: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('maybeAppend' as const), at: fc.nat(), matching: fc.nat(3), fresh: fc.nat(3), commit: fc.nat() }),
  fc.record({ kind: fc.constant('persist' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.constant({ kind: 'staleStableTo' as const }),
  fc.record({ kind: fc.constant('commit' as const), to: fc.nat() }),
  fc.record({ kind: fc.constant('compact' as const), at: fc.nat() }),
);

/** The reference: terms[i - 1] is the term of entry i; entries up to compactedTo are gone. */
class Model {
  terms: number[] = [];
  committed = 0;
  compactedTo = 0;

  lastIndex(): number {
    return this.terms.length;
  }

  termAt(index: number): number {
    return index === 0 ? 0 : this.terms[index - 1]!;
  }

  /** Replaces everything after `after` with `terms`. */
  truncateAndAppend(after: number, terms: number[]): void {
    this.terms = this.terms.slice(0, after).concat(terms);
  }
}

/** An integer in [lo, hi] picked by a raw random number. */
function pick(raw: number, lo: number, hi: number): number {
  return lo + (raw % (hi - lo + 1));
}

function entriesFrom(first: number, terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: first + i, term, type: 'normal' as const, data: EMPTY_BYTES }));
}

function apply(op: Operation, log: RaftLog, storage: MemoryStorage, model: Model): void {
  switch (op.kind) {
    case 'append': {
      // A leader's append, or a follower's truncation: never at or before a committed entry.
      const after = pick(op.at, model.committed, model.lastIndex());
      const term = Math.max(1, Math.max(0, ...model.terms) + op.termBump);
      const terms = Array.from({ length: op.count }, () => term);
      assert.equal(log.append(entriesFrom(after + 1, terms)), after + op.count);
      model.truncateAndAppend(after, terms);
      return;
    }
    case 'maybeAppend': {
      // An AppendEntries whose previous entry matches: some entries we already have, then new ones
      // from a later term (which replace any suffix of ours they conflict with).
      const index = pick(op.at, Math.max(model.committed, model.compactedTo), model.lastIndex());
      const matching = Math.min(op.matching, model.lastIndex() - index);
      const known = model.terms.slice(index, index + matching);
      const freshTerm = Math.max(...model.terms, 0) + 1;
      const terms = known.concat(Array.from({ length: op.fresh }, () => freshTerm));
      const leaderCommit = op.commit % (index + terms.length + 3);
      const lastNew = log.maybeAppend(index, model.termAt(index), leaderCommit, entriesFrom(index + 1, terms));
      assert.equal(lastNew, index + terms.length);
      if (op.fresh > 0) model.truncateAndAppend(index + matching, terms.slice(matching));
      model.committed = Math.max(model.committed, Math.min(leaderCommit, index + terms.length));
      return;
    }
    case 'persist': {
      // The application persists a prefix of the unstable entries (normally all of them).
      const unstable = log.unstableEntries();
      const prefix = unstable.slice(0, Math.ceil(unstable.length * op.fraction));
      const last = prefix[prefix.length - 1];
      if (!last) return;
      storage.append(prefix);
      log.stableTo(last.index, last.term);
      return;
    }
    case 'staleStableTo': {
      // An acknowledgement of a write whose entry has since been replaced: it must change nothing.
      const last = log.unstableEntries().at(-1);
      if (last) log.stableTo(last.index, last.term + 100);
      return;
    }
    case 'commit': {
      const to = pick(op.to, 0, model.lastIndex());
      log.commitTo(to);
      model.committed = Math.max(model.committed, to);
      return;
    }
    case 'compact': {
      // Only committed entries that are stable may be snapshotted and discarded.
      const highest = Math.min(model.committed, log.unstable.offset - 1);
      if (highest <= model.compactedTo) return;
      const at = pick(op.at, model.compactedTo + 1, highest);
      storage.createSnapshot(at, CONF_STATE, EMPTY_BYTES);
      storage.compact(at);
      model.compactedTo = at;
      return;
    }
  }
}

function checkAgainstModel(log: RaftLog, storage: MemoryStorage, model: Model, context: string): void {
  assert.equal(log.lastIndex(), model.lastIndex(), `${context}: lastIndex`);
  assert.equal(log.firstIndex(), model.compactedTo + 1, `${context}: firstIndex`);
  assert.equal(log.committed, model.committed, `${context}: committed`);
  assert.equal(log.lastTerm(), model.termAt(model.lastIndex()), `${context}: lastTerm`);
  for (let index = model.compactedTo; index <= model.lastIndex(); index++) {
    assert.equal(log.term(index), model.termAt(index), `${context}: term(${index})`);
  }
  if (model.compactedTo > 0) {
    assert.throws(
      () => log.term(model.compactedTo - 1),
      (error: unknown) => error instanceof RaftError && error.code === 'CONCORD_E_COMPACTED',
      `${context}: term below the snapshot is compacted`,
    );
  }
  assert.deepEqual(
    log.allEntriesFrom(log.firstIndex()).map((e) => [e.index, e.term]),
    model.terms.slice(model.compactedTo).map((term, i) => [model.compactedTo + 1 + i, term]),
    `${context}: entries`,
  );
  // The unstable suffix starts right after what storage holds for good, and reaches the end.
  const unstable = log.unstableEntries();
  if (unstable.length > 0) {
    assert.equal(unstable[0]!.index, log.unstable.offset, `${context}: unstable offset`);
    assert.equal(unstable[unstable.length - 1]!.index, model.lastIndex(), `${context}: unstable end`);
  } else {
    assert.equal(storage.lastIndex(), model.lastIndex(), `${context}: all persisted`);
  }
  for (let index = model.compactedTo + 1; index < log.unstable.offset; index++) {
    assert.equal(storage.term(index), model.termAt(index), `${context}: stable term(${index})`);
  }
}

test('RaftLog agrees with a reference model under random appends, truncations, stableTo, commits and compactions', () => {
  fc.assert(
    fc.property(fc.array(operation, { minLength: 1, maxLength: 40 }), (operations) => {
      const storage = MemoryStorage.bootstrap(CONF_STATE);
      const log = new RaftLog(storage);
      const model = new Model();
      operations.forEach((op, step) => {
        apply(op, log, storage, model);
        checkAgainstModel(log, storage, model, `step ${step} (${op.kind})`);
      });
      // Persisting everything at the end leaves storage holding exactly the model's log.
      apply({ kind: 'persist', fraction: 1 }, log, storage, model);
      assert.deepEqual(log.unstableEntries(), []);
      checkAgainstModel(log, storage, model, 'after a full persist');
    }),
    { numRuns: 300 },
  );
});
