// Tests of the key-value model through the checker: hand-drawn histories with a known answer, and
// properties over histories generated from real sequential executions.
//
// Timelines below show each client's operations as |-- ... --| spans over logical time; an
// operation whose response never arrived is drawn as |-- ... ....... (no response).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkHistory } from '../../src/sim/linearizability.ts';
import { kvModel } from '../../src/sim/kv-model.ts';
import type { KvInput, KvOperation, KvOutput } from '../../src/sim/kv-model.ts';

function get(clientId: number, key: string, callTime: number, returnTime: number, value: string | null): KvOperation {
  return { clientId, input: { kind: 'get', key }, callTime, returnTime, output: { kind: 'get', value } };
}

function put(clientId: number, key: string, value: string, callTime: number, returnTime: number | undefined): KvOperation {
  const output: KvOutput | undefined = returnTime === undefined ? undefined : { kind: 'put' };
  return { clientId, input: { kind: 'put', key, value }, callTime, returnTime, output };
}

function cas(
  clientId: number,
  key: string,
  expected: string | null,
  value: string,
  callTime: number,
  returnTime: number | undefined,
  succeeded: boolean | undefined,
): KvOperation {
  const output: KvOutput | undefined = succeeded === undefined ? undefined : { kind: 'cas', succeeded };
  return { clientId, input: { kind: 'cas', key, expected, value }, callTime, returnTime, output };
}

const verdictOf = (history: readonly KvOperation[]): string => checkHistory(kvModel, history).verdict;

describe('kvModel: hand-written histories', () => {
  test('accepts a sequential history', () => {
    // client 1: |get=null| |put 1| |cas 1->2 ok| |cas 1->3 failed| |get=2|
    //           0        1 2     3 4           5 6               7 8     9
    const history = [
      get(1, 'x', 0, 1, null),
      put(1, 'x', '1', 2, 3),
      cas(1, 'x', '1', '2', 4, 5, true),
      cas(1, 'x', '1', '3', 6, 7, false),
      get(1, 'x', 8, 9, '2'),
    ];
    assert.equal(verdictOf(history), 'linearizable');
  });

  test('accepts concurrent operations that fit in only one order', () => {
    // client 1: |------------ put 1 ------------|
    // client 2:      |------ put 2 ------|
    // client 3:          |-- get=2 --|             |-- get=1 --|
    //           0    2   3           5   8      10 12          13
    // Only put 2, get=2, put 1, get=1 works: put 2 must precede put 1, which is the reverse of
    // their call order.
    const history = [
      put(1, 'x', '1', 0, 10),
      put(2, 'x', '2', 2, 8),
      get(3, 'x', 3, 5, '2'),
      get(3, 'x', 12, 13, '1'),
    ];
    assert.equal(verdictOf(history), 'linearizable');
    // Once both puts have returned, a read of 2 followed by a read of 1 has no valid order: put 1
    // would have to land after the first read, but it had already returned by then.
    const reversedAfterwards = [...history.slice(0, 3), get(3, 'x', 11, 12, '2'), get(3, 'x', 13, 14, '1')];
    assert.equal(verdictOf(reversedAfterwards), 'not-linearizable');
  });

  test('rejects a stale read', () => {
    // client 1: |-- put 1 --| |-- put 2 --|
    // client 2:                              |-- get=1 --|
    //           0           1 2           3  4           5
    const history = [put(1, 'x', '1', 0, 1), put(1, 'x', '2', 2, 3), get(2, 'x', 4, 5, '1')];
    const result = checkHistory(kvModel, history);
    assert.equal(result.verdict, 'not-linearizable');
    const explanation = result.partitions[0]?.explanation ?? '';
    assert.match(explanation, /#2 client 2 \[4, 5\] get\("x"\) -> "1"/);
    assert.match(explanation, /Longest linearizable prefix found \(2 of 3 operations\)/);
    assert.match(explanation, /State after that prefix: "2"/);
  });

  test('rejects a read of a value that was never written', () => {
    // client 1: |-------- put 1 --------|
    // client 2:     |-- get=7 --|
    //           0   1           2       3
    const history = [put(1, 'x', '1', 0, 3), get(2, 'x', 1, 2, '7')];
    assert.equal(verdictOf(history), 'not-linearizable');
  });

  test('rejects two compare-and-sets from the same expected value that both succeed', () => {
    // client 1: |-- put 0 --| |------ cas 0->A ok ------|
    // client 2:                   |------ cas 0->B ok ------|
    //           0           1 2   3                     5   6
    const bothSucceed = [put(1, 'x', '0', 0, 1), cas(1, 'x', '0', 'A', 2, 5, true), cas(2, 'x', '0', 'B', 3, 6, true)];
    assert.equal(verdictOf(bothSucceed), 'not-linearizable');
    // With the second one failing instead, the history is fine.
    const oneFails = [put(1, 'x', '0', 0, 1), cas(1, 'x', '0', 'A', 2, 5, true), cas(2, 'x', '0', 'B', 3, 6, false)];
    assert.equal(verdictOf(oneFails), 'linearizable');
  });

  test('rejects a compare-and-set that fails although the value matched', () => {
    // client 1: |-- put 0 --| |-- cas 0->A failed --|
    //           0           1 2                     3
    assert.equal(verdictOf([put(1, 'x', '0', 0, 1), cas(1, 'x', '0', 'A', 2, 3, false)]), 'not-linearizable');
  });

  test('accepts a timed-out put that must have been applied', () => {
    // client 1: |-- put 1 --|
    // client 2:               |-- put 2 ............ (no response)
    // client 3:                        |-- get=2 --|
    //           0           1 2        5           6
    const history = [put(1, 'x', '1', 0, 1), put(2, 'x', '2', 2, undefined), get(3, 'x', 5, 6, '2')];
    assert.equal(verdictOf(history), 'linearizable');
  });

  test('accepts a timed-out put that never took effect', () => {
    // client 1: |-- put 1 --|
    // client 2:               |-- put 2 ............................ (no response)
    // client 3:                        |-- get=1 --|  |-- get=1 --|
    //           0           1 2        5           6  8           9
    const history = [
      put(1, 'x', '1', 0, 1),
      put(2, 'x', '2', 2, undefined),
      get(3, 'x', 5, 6, '1'),
      get(3, 'x', 8, 9, '1'),
    ];
    assert.equal(verdictOf(history), 'linearizable');
  });

  test('rejects a timed-out put whose value is seen and then the old value again', () => {
    // client 1: |-- put 1 --|
    // client 2:               |-- put 2 ............................ (no response)
    // client 3:                        |-- get=2 --|  |-- get=1 --|
    //           0           1 2        5           6  8           9
    const history = [
      put(1, 'x', '1', 0, 1),
      put(2, 'x', '2', 2, undefined),
      get(3, 'x', 5, 6, '2'),
      get(3, 'x', 8, 9, '1'),
    ];
    const result = checkHistory(kvModel, history);
    assert.equal(result.verdict, 'not-linearizable');
    assert.match(result.partitions[0]?.explanation ?? '', /put\("x", "2"\) -> \? \(outcome unknown\)/);
  });

  test('a timed-out compare-and-set takes effect only if its expected value matched', () => {
    // client 1: |-- put 0 --|                 |-- get=A --|
    // client 2:               |-- cas 1->A ........................ (no response)
    //           0           1 2               4           5
    const mismatched = [put(1, 'x', '0', 0, 1), cas(2, 'x', '1', 'A', 2, undefined, undefined), get(1, 'x', 4, 5, 'A')];
    assert.equal(verdictOf(mismatched), 'not-linearizable');
    const matched = [put(1, 'x', '1', 0, 1), cas(2, 'x', '1', 'A', 2, undefined, undefined), get(1, 'x', 4, 5, 'A')];
    assert.equal(verdictOf(matched), 'linearizable');
  });

  test('checks keys independently', () => {
    // client 1: |-- put a=1 --|                |-- get a=1 --|
    // client 2:                |-- put b=2 --|                 |-- get b=2 --|
    //           0             1 2            3 4             5 6             7
    // Were both keys one register, get a=1 after put b=2 would be a stale read.
    const history = [
      put(1, 'a', '1', 0, 1),
      put(2, 'b', '2', 2, 3),
      get(1, 'a', 4, 5, '1'),
      get(2, 'b', 6, 7, '2'),
    ];
    const result = checkHistory(kvModel, history);
    assert.equal(result.verdict, 'linearizable');
    assert.deepEqual(result.partitions.map((partition) => partition.operationCount), [2, 2]);

    // A stale read on key b alone is caught, and key a's partition is still reported clean.
    const staleOnB = [...history.slice(0, 3), put(2, 'b', '3', 6, 7), get(1, 'b', 8, 9, '2')];
    const staleResult = checkHistory(kvModel, staleOnB);
    assert.equal(staleResult.verdict, 'not-linearizable');
    assert.deepEqual(staleResult.partitions.map((partition) => partition.verdict), ['linearizable', 'not-linearizable']);
  });

  test('rejects an output of another kind than the input', () => {
    const mismatched: KvOperation = { clientId: 1, input: { kind: 'put', key: 'x', value: '1' }, callTime: 0, returnTime: 1, output: { kind: 'get', value: null } };
    assert.equal(verdictOf([mismatched]), 'not-linearizable');
  });

  test('distinguishes an absent key from the empty string', () => {
    // client 1: |-- put "" --| |-- get=null --|
    //           0            1 2              3
    assert.equal(verdictOf([put(1, 'x', '', 0, 1), get(1, 'x', 2, 3, null)]), 'not-linearizable');
    assert.notEqual(kvModel.stateKey(null), kvModel.stateKey(''));
  });

  test('checks a long, mildly concurrent history with some unknown outcomes quickly', () => {
    // 1,000 operations on one key from three clients, each client's operations overlapping the
    // others', and five puts whose outcomes are unknown and never took effect.
    const history: KvOperation[] = [];
    let value: string | null = null;
    for (let index = 0; index < 1000; index++) {
      const clientId = index % 3;
      const callTime = index * 10;
      const returnTime = callTime + 25;
      if (index % 200 === 7) {
        history.push(put(clientId, 'x', `lost-${index}`, callTime, undefined));
      } else if (index % 2 === 0) {
        value = `v${index}`;
        history.push(put(clientId, 'x', value, callTime, returnTime));
      } else {
        history.push(get(clientId, 'x', callTime, returnTime, value));
      }
    }
    const result = checkHistory(kvModel, history);
    assert.equal(result.verdict, 'linearizable');
    assert.ok((result.partitions[0]?.searchSteps ?? Infinity) < 10_000, `took ${result.partitions[0]?.searchSteps} steps`);

    // Proving a violation near the end means exhausting every alternative before it, which the
    // cache must keep tractable despite the unknown outcomes.
    const staleReadIndex = 901;
    const staleRead = history[staleReadIndex];
    assert.ok(staleRead !== undefined && staleRead.input.kind === 'get');
    const broken = history.slice();
    broken[staleReadIndex] = { ...staleRead, output: { kind: 'get', value: 'v100' } };
    const brokenResult = checkHistory(kvModel, broken);
    assert.equal(brokenResult.verdict, 'not-linearizable');
    assert.ok((brokenResult.partitions[0]?.searchSteps ?? Infinity) < 500_000, `took ${brokenResult.partitions[0]?.searchSteps} steps`);
    assert.match(brokenResult.partitions[0]?.explanation ?? '', /left out of it: #901 client 1 \[9010, 9035\] get\("x"\) -> "v100"/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over generated histories.

const keys = ['a', 'b'];
const values = ['1', '2', '3'];

const inputArbitrary: fc.Arbitrary<KvInput> = fc.oneof(
  fc.record({ kind: fc.constant('get' as const), key: fc.constantFrom(...keys) }),
  fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom(...keys), value: fc.constantFrom(...values) }),
  fc.record({
    kind: fc.constant('cas' as const),
    key: fc.constantFrom(...keys),
    expected: fc.constantFrom(null, ...values),
    value: fc.constantFrom(...values),
  }),
);

/** What became of an operation: answered, or unanswered after it did or did not take effect. */
type Fate = 'completed' | 'unknown-applied' | 'unknown-lost';

interface PlannedOperation {
  input: KvInput;
  clientId: number;
  /** How far before and after its linearization point the operation's call and return are. */
  widenBeforeTime: number;
  widenAfterTime: number;
  fate: Fate;
}

const plannedOperationArbitrary: fc.Arbitrary<PlannedOperation> = fc.record({
  input: inputArbitrary,
  clientId: fc.nat(4),
  widenBeforeTime: fc.nat(25),
  widenAfterTime: fc.nat(25),
  fate: fc.constantFrom<Fate>('completed', 'completed', 'completed', 'completed', 'completed', 'completed', 'unknown-applied', 'unknown-lost'),
});

/**
 * Executes the planned operations one after another against a real map, the i-th at time
 * 100 + 10 * i, then records each with a call before and a return after that moment. Lost
 * operations are recorded but never executed.
 */
function executeSequentially(planned: readonly PlannedOperation[]): KvOperation[] {
  const store = new Map<string, string>();
  return planned.map((plan, index) => {
    const linearizationTime = 100 + 10 * index;
    const callTime = linearizationTime - plan.widenBeforeTime;
    if (plan.fate === 'unknown-lost') {
      return { clientId: plan.clientId, input: plan.input, callTime, returnTime: undefined, output: undefined };
    }
    const output = applyToStore(store, plan.input);
    const returnTime = plan.fate === 'completed' ? linearizationTime + plan.widenAfterTime : undefined;
    return { clientId: plan.clientId, input: plan.input, callTime, returnTime, output: returnTime === undefined ? undefined : output };
  });
}

function applyToStore(store: Map<string, string>, input: KvInput): KvOutput {
  const current = store.get(input.key) ?? null;
  switch (input.kind) {
    case 'get':
      return { kind: 'get', value: current };
    case 'put':
      store.set(input.key, input.value);
      return { kind: 'put' };
    case 'cas': {
      const succeeded = current === input.expected;
      if (succeeded) store.set(input.key, input.value);
      return { kind: 'cas', succeeded };
    }
  }
}

const historyArbitrary = fc.array(plannedOperationArbitrary, { maxLength: 60 }).map(executeSequentially);

describe('kvModel: properties', () => {
  test('histories of real sequential executions are linearizable', () => {
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        const result = checkHistory(kvModel, history);
        assert.equal(result.verdict, 'linearizable', JSON.stringify(result.partitions));
      }),
      { numRuns: 300 },
    );
  });

  test('a completed get returning a value never written makes the history not linearizable', () => {
    fc.assert(
      fc.property(historyArbitrary, fc.nat(), (history, choice) => {
        const completedGets = history
          .map((operation, index) => ({ operation, index }))
          .filter(({ operation }) => operation.input.kind === 'get' && operation.output !== undefined);
        fc.pre(completedGets.length > 0);
        const chosen = completedGets[choice % completedGets.length];
        assert.ok(chosen !== undefined);
        const mutated = history.slice();
        mutated[chosen.index] = { ...chosen.operation, output: { kind: 'get', value: 'never-written' } };
        const result = checkHistory(kvModel, mutated);
        assert.equal(result.verdict, 'not-linearizable');
        const failing = result.partitions.find((partition) => partition.verdict === 'not-linearizable');
        assert.match(failing?.explanation ?? '', /never-written/);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Agreement with a brute-force checker on small random histories, whose outputs are random too, so
// that both verdicts come up often.

/**
 * Tries every order in which the operations could have taken effect: an operation may go next
 * unless some other pending operation with a known outcome returned strictly before it was
 * called. Unknown-outcome operations may also be left out. No memoization, no cleverness.
 */
function isLinearizableByBruteForce(history: readonly KvOperation[]): boolean {
  const search = (pending: readonly KvOperation[], state: string | null): boolean => {
    if (pending.every((operation) => operation.returnTime === undefined)) return true;
    return pending.some((candidate) => {
      const blocked = pending.some(
        (other) => other !== candidate && other.returnTime !== undefined && other.returnTime < candidate.callTime,
      );
      if (blocked) return false;
      const result = kvModel.step(state, candidate.input, candidate.output);
      return result.ok && search(pending.filter((operation) => operation !== candidate), result.state);
    });
  };
  return search(history, null);
}

const randomOperationArbitrary: fc.Arbitrary<KvOperation> = fc
  .record({
    clientId: fc.nat(3),
    input: fc.oneof(
      fc.record({ kind: fc.constant('get' as const), key: fc.constant('x') }),
      fc.record({ kind: fc.constant('put' as const), key: fc.constant('x'), value: fc.constantFrom('1', '2') }),
      fc.record({
        kind: fc.constant('cas' as const),
        key: fc.constant('x'),
        expected: fc.constantFrom(null, '1', '2'),
        value: fc.constantFrom('1', '2'),
      }),
    ),
    callTime: fc.nat(12),
    durationTime: fc.nat(6),
    isUnknown: fc.integer({ min: 0, max: 3 }).map((roll) => roll === 0),
    observedValue: fc.constantFrom(null, '1', '2'),
    observedSuccess: fc.boolean(),
  })
  .map(({ clientId, input, callTime, durationTime, isUnknown, observedValue, observedSuccess }) => {
    if (isUnknown) return { clientId, input, callTime, returnTime: undefined, output: undefined };
    const output: KvOutput =
      input.kind === 'get'
        ? { kind: 'get', value: observedValue }
        : input.kind === 'put'
          ? { kind: 'put' }
          : { kind: 'cas', succeeded: observedSuccess };
    return { clientId, input, callTime, returnTime: callTime + durationTime, output };
  });

describe('kvModel: agreement with brute force', () => {
  test('the checker agrees with trying every order on small random histories', () => {
    const verdictCounts = { linearizable: 0, 'not-linearizable': 0 };
    fc.assert(
      fc.property(fc.array(randomOperationArbitrary, { minLength: 1, maxLength: 7 }), (history) => {
        const expected = isLinearizableByBruteForce(history) ? 'linearizable' : 'not-linearizable';
        verdictCounts[expected]++;
        assert.equal(checkHistory(kvModel, history).verdict, expected);
      }),
      { numRuns: 2000 },
    );
    // Both verdicts must be well represented, or the agreement would say little.
    assert.ok(verdictCounts.linearizable > 200, JSON.stringify(verdictCounts));
    assert.ok(verdictCounts['not-linearizable'] > 200, JSON.stringify(verdictCounts));
  });
});
