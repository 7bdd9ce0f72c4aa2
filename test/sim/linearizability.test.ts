// Tests of the generic checker, using models other than the key-value one so that nothing in the
// checker can lean on key-value specifics.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkHistory } from '../../src/sim/linearizability.ts';
import type { Model, Operation } from '../../src/sim/linearizability.ts';

// A shared counter: 'increment' adds one and returns nothing useful, 'read' returns the count.
type CounterInput = 'increment' | 'read';
type CounterOutput = { count: number } | { done: true };

const counterModel: Model<number, CounterInput, CounterOutput> = {
  init: () => 0,
  step(count, input, output) {
    if (input === 'increment') return { ok: true, state: count + 1 };
    const ok = output === undefined || ('count' in output && output.count === count);
    return { ok, state: count };
  },
  stateKey: (count) => String(count),
};

function increment(clientId: number, callTime: number, returnTime: number | undefined): Operation<CounterInput, CounterOutput> {
  return { clientId, input: 'increment', callTime, returnTime, output: returnTime === undefined ? undefined : { done: true } };
}

function read(clientId: number, callTime: number, returnTime: number, count: number): Operation<CounterInput, CounterOutput> {
  return { clientId, input: 'read', callTime, returnTime, output: { count } };
}

describe('checkHistory with a counter model', () => {
  test('accepts an empty history', () => {
    const result = checkHistory(counterModel, []);
    assert.equal(result.verdict, 'linearizable');
    assert.equal(result.partitions.length, 1);
    assert.equal(result.partitions[0]?.operationCount, 0);
  });

  test('accepts a read that sees one of two concurrent increments', () => {
    // client 1: |-- inc --------------|
    // client 2:    |-- inc --|
    // client 3:        |-- read=1 --|
    //           0  1   2     3    4   5
    const history = [increment(1, 0, 5), increment(2, 1, 3), read(3, 2, 4, 1)];
    assert.equal(checkHistory(counterModel, history).verdict, 'linearizable');
  });

  test('rejects a read that misses an increment that had completed', () => {
    // client 1: |-- inc --|
    // client 2:              |-- read=0 --|
    //           0          1  2           3
    const history = [increment(1, 0, 1), read(2, 2, 3, 0)];
    const result = checkHistory(counterModel, history);
    assert.equal(result.verdict, 'not-linearizable');
    // Without describeOperation the explanation falls back to JSON.
    assert.match(result.partitions[0]?.explanation ?? '', /"read" -> \{"count":0\}/);
  });

  test('treats operations that merely touch in time as concurrent', () => {
    // client 1: |-- inc --|
    // client 2:           |-- read=0 --|
    //           0         1            2
    const history = [increment(1, 0, 1), read(2, 1, 2, 0)];
    assert.equal(checkHistory(counterModel, history).verdict, 'linearizable');
  });

  test('lets an unknown-outcome increment count or not', () => {
    // client 1: |-- inc ......................(no response)
    // client 2:         |-- read=1 --|   |-- read=1 --|
    //           0       1            2   3            4
    const applied = [increment(1, 0, undefined), read(2, 1, 2, 1), read(2, 3, 4, 1)];
    assert.equal(checkHistory(counterModel, applied).verdict, 'linearizable');
    const notApplied = [increment(1, 0, undefined), read(2, 1, 2, 0), read(2, 3, 4, 0)];
    assert.equal(checkHistory(counterModel, notApplied).verdict, 'linearizable');
    const goesBackwards = [increment(1, 0, undefined), read(2, 1, 2, 1), read(2, 3, 4, 0)];
    assert.equal(checkHistory(counterModel, goesBackwards).verdict, 'not-linearizable');
  });
});

describe('partitions', () => {
  // Two counters, named by the tag on every operation; the model splits them apart.
  type TaggedInput = { counter: string; action: CounterInput };
  const twoCounterModel: Model<number, TaggedInput, CounterOutput> = {
    init: counterModel.init,
    step: (count, input, output) => counterModel.step(count, input.action, output),
    stateKey: counterModel.stateKey,
    partition(operations) {
      const byCounter = new Map<string, Operation<TaggedInput, CounterOutput>[]>();
      for (const operation of operations) {
        byCounter.set(operation.input.counter, [...(byCounter.get(operation.input.counter) ?? []), operation]);
      }
      return [...byCounter.values()];
    },
  };
  const tagged = (counter: string, operation: Operation<CounterInput, CounterOutput>): Operation<TaggedInput, CounterOutput> => ({
    ...operation,
    input: { counter, action: operation.input },
  });

  test('a violation in one partition makes the whole history not linearizable', () => {
    const history = [
      tagged('a', increment(1, 0, 1)),
      tagged('a', read(1, 2, 3, 1)),
      tagged('b', increment(2, 0, 1)),
      tagged('b', read(2, 2, 3, 0)),
    ];
    const result = checkHistory(twoCounterModel, history);
    assert.equal(result.verdict, 'not-linearizable');
    assert.deepEqual(result.partitions.map((partition) => partition.verdict), ['linearizable', 'not-linearizable']);
    // Operations are labelled with their index in the whole history, not in the partition.
    assert.match(result.partitions[1]?.explanation ?? '', /#3 client 2 \[2, 3\]/);
  });

  test('an unknown partition makes the whole unknown unless another is not linearizable', () => {
    // Counter "hard" has many unknown-outcome increments that the search must try in every
    // combination before it can rule out the impossible read; a tiny budget runs out first.
    const hard = [
      ...Array.from({ length: 20 }, (_, index) => tagged('hard', increment(index, index, undefined))),
      tagged('hard', read(99, 100, 101, 1000)),
    ];
    const easy = [tagged('easy', increment(1, 0, 1)), tagged('easy', read(1, 2, 3, 1))];
    const result = checkHistory(twoCounterModel, [...hard, ...easy], { maxSearchSteps: 1000 });
    assert.equal(result.verdict, 'unknown');
    assert.deepEqual(result.partitions.map((partition) => partition.verdict), ['unknown', 'linearizable']);
    assert.equal(result.partitions[0]?.searchSteps, 1000);

    const broken = [tagged('easy', increment(1, 0, 1)), tagged('easy', read(1, 2, 3, 5))];
    assert.equal(checkHistory(twoCounterModel, [...hard, ...broken], { maxSearchSteps: 1000 }).verdict, 'not-linearizable');
  });
});

describe('search budget', () => {
  // Many concurrent unknown-outcome increments followed by an impossible read: proving the
  // violation means exploring every subset of the increments.
  const impossibleAfterUnknowns = (unknownCount: number): Operation<CounterInput, CounterOutput>[] => [
    ...Array.from({ length: unknownCount }, (_, index) => increment(index, index, undefined)),
    read(unknownCount, 1000, 1001, unknownCount + 1),
  ];

  test('gives up with unknown when maxSearchSteps is exceeded', () => {
    const result = checkHistory(counterModel, impossibleAfterUnknowns(30), { maxSearchSteps: 10_000 });
    assert.equal(result.verdict, 'unknown');
    assert.equal(result.partitions[0]?.searchSteps, 10_000);
    assert.match(result.partitions[0]?.explanation ?? '', /Gave up after 10000 search steps/);
  });

  test('reaches a verdict on a small instance of the same shape', () => {
    const result = checkHistory(counterModel, impossibleAfterUnknowns(6));
    assert.equal(result.verdict, 'not-linearizable');
  });

  test('rejects a budget that is not a positive integer', () => {
    assert.throws(() => checkHistory(counterModel, [], { maxSearchSteps: 0 }), /maxSearchSteps/);
  });
});

describe('input validation', () => {
  test('rejects a return before the call, naming the operation', () => {
    const history = [increment(1, 0, 1), increment(7, 5, 4)];
    assert.throws(() => checkHistory(counterModel, history), /operation #1 \(client 7\): returnTime 4 is before callTime 5/);
  });

  test('rejects an output without a return time', () => {
    const history: Operation<CounterInput, CounterOutput>[] = [
      { clientId: 3, input: 'read', callTime: 0, returnTime: undefined, output: { count: 0 } },
    ];
    assert.throws(() => checkHistory(counterModel, history), /operation #0 \(client 3\): has an output but no returnTime/);
  });

  test('rejects a return time without an output', () => {
    const history: Operation<CounterInput, CounterOutput>[] = [
      { clientId: 3, input: 'read', callTime: 0, returnTime: 2, output: undefined },
    ];
    assert.throws(() => checkHistory(counterModel, history), /operation #0 \(client 3\): has a returnTime but no output/);
  });

  test('rejects non-finite times', () => {
    assert.throws(() => checkHistory(counterModel, [increment(1, Number.NaN, 1)]), /callTime must be a finite number/);
  });
});

// ---------------------------------------------------------------------------------------------
// Agreement with a brute-force checker. Unknown-outcome increments do not cancel each other out
// the way overwriting puts do, which exercises the checker's handling of several of them at once.

/**
 * Tries every order in which the operations could have taken effect: an operation may go next
 * unless some other pending operation with a known outcome returned strictly before it was
 * called. Unknown-outcome operations may also be left out. No memoization, no cleverness.
 */
function isLinearizableByBruteForce<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): boolean {
  const search = (pending: readonly Operation<I, O>[], state: S): boolean => {
    if (pending.every((operation) => operation.returnTime === undefined)) return true;
    return pending.some((candidate) => {
      const blocked = pending.some(
        (other) => other !== candidate && other.returnTime !== undefined && other.returnTime < candidate.callTime,
      );
      if (blocked) return false;
      const result = model.step(state, candidate.input, candidate.output);
      return result.ok && search(pending.filter((operation) => operation !== candidate), result.state);
    });
  };
  return search(history, model.init());
}

const counterOperationArbitrary: fc.Arbitrary<Operation<CounterInput, CounterOutput>> = fc
  .record({
    clientId: fc.nat(3),
    isRead: fc.boolean(),
    callTime: fc.nat(12),
    durationTime: fc.nat(6),
    isUnknown: fc.integer({ min: 0, max: 2 }).map((roll) => roll === 0),
    observedCount: fc.nat(4),
  })
  .map(({ clientId, isRead, callTime, durationTime, isUnknown, observedCount }) => {
    if (isUnknown) return isRead ? { ...read(clientId, callTime, 0, 0), returnTime: undefined, output: undefined } : increment(clientId, callTime, undefined);
    const returnTime = callTime + durationTime;
    return isRead ? read(clientId, callTime, returnTime, observedCount) : increment(clientId, callTime, returnTime);
  });

describe('agreement with brute force', () => {
  test('the checker agrees with trying every order on small random counter histories', () => {
    const verdictCounts = { linearizable: 0, 'not-linearizable': 0 };
    fc.assert(
      fc.property(fc.array(counterOperationArbitrary, { minLength: 1, maxLength: 8 }), (history) => {
        const expected = isLinearizableByBruteForce(counterModel, history) ? 'linearizable' : 'not-linearizable';
        verdictCounts[expected]++;
        assert.equal(checkHistory(counterModel, history).verdict, expected);
      }),
      { numRuns: 2000 },
    );
    // Both verdicts must be well represented, or the agreement would say little.
    assert.ok(verdictCounts.linearizable > 200, JSON.stringify(verdictCounts));
    assert.ok(verdictCounts['not-linearizable'] > 200, JSON.stringify(verdictCounts));
  });
});
