// A model of a key-value store holding one register per key, with get, put and compare-and-set,
// for the linearizability checker. Keys are independent, so the history is partitioned by key and
// each partition's state is just that key's current value.

import type { Model, Operation } from './linearizability.ts';

export type KvInput =
  | { kind: 'get'; key: string }
  | { kind: 'put'; key: string; value: string }
  /** expected null means the key must be absent. */
  | { kind: 'cas'; key: string; expected: string | null; value: string };

export type KvOutput =
  /** value null means the key was absent. */
  | { kind: 'get'; value: string | null }
  | { kind: 'put' }
  | { kind: 'cas'; succeeded: boolean };

/** The current value of one key; null when the key is absent. */
export type KvState = string | null;

export type KvOperation = Operation<KvInput, KvOutput>;

function stepKv(
  state: KvState,
  input: KvInput,
  output: KvOutput | undefined,
): { ok: boolean; state: KvState } {
  // An output of another kind than the input can never be explained by any state.
  if (output !== undefined && output.kind !== input.kind) return { ok: false, state };
  switch (input.kind) {
    case 'get':
      return { ok: output === undefined || (output.kind === 'get' && output.value === state), state };
    case 'put':
      return { ok: true, state: input.value };
    case 'cas': {
      // Whatever the client saw, the register decides: a matching value means the swap happened.
      const succeeds = state === input.expected;
      const ok = output === undefined || (output.kind === 'cas' && output.succeeded === succeeds);
      return { ok, state: succeeds ? input.value : state };
    }
  }
}

function partitionByKey(operations: readonly KvOperation[]): KvOperation[][] {
  const operationsByKey = new Map<string, KvOperation[]>();
  for (const operation of operations) {
    const sameKey = operationsByKey.get(operation.input.key);
    if (sameKey === undefined) operationsByKey.set(operation.input.key, [operation]);
    else sameKey.push(operation);
  }
  return [...operationsByKey.values()];
}

function describeKvOperation(input: KvInput, output: KvOutput | undefined): string {
  const key = JSON.stringify(input.key);
  const call =
    input.kind === 'get'
      ? `get(${key})`
      : input.kind === 'put'
        ? `put(${key}, ${JSON.stringify(input.value)})`
        : `cas(${key}, ${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)})`;
  if (output === undefined) return `${call} -> ? (outcome unknown)`;
  switch (output.kind) {
    case 'get':
      return `${call} -> ${JSON.stringify(output.value)}`;
    case 'put':
      return `${call} -> ok`;
    case 'cas':
      return `${call} -> ${output.succeeded ? 'succeeded' : 'failed'}`;
  }
}

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step: stepKv,
  // JSON keeps "absent" (null) distinct from every string, including the empty one, and reads well
  // in explanations.
  stateKey: (state) => JSON.stringify(state),
  partition: partitionByKey,
  describeOperation: describeKvOperation,
};
