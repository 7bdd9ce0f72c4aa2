// A generic linearizability checker: the Wing–Gong search with Lowe's memoization, run separately on
// each independent sub-history the model defines (as Porcupine does).
//
// The search walks a time-ordered list of call and return entries. At a call it tries to linearize
// that operation now (apply it to the model state); at a return it has to backtrack, because the
// operation returning there was not linearized before its response. A cache of (set of linearized
// operations, model state) pairs already explored keeps the search from repeating work.

export interface Operation<Input, Output> {
  /** Which client issued the operation (a client has at most one operation outstanding). */
  clientId: number;
  input: Input;
  /** Logical time of the invocation. */
  callTime: number;
  /**
   * Time of the response; undefined when the outcome is unknown (the client timed out or gave up):
   * such an operation may have taken effect at any moment after callTime, or never.
   */
  returnTime: number | undefined;
  /** Undefined exactly when returnTime is undefined. */
  output: Output | undefined;
}

export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Applies input to state. output === undefined means "unknown outcome": accept any output.
   * Returns ok=false when the observed output is impossible from this state.
   */
  step(state: State, input: Input, output: Output | undefined): { ok: boolean; state: State };
  /** A string key identifying the state, for memoization (equal states => equal keys). */
  stateKey(state: State): string;
  /** Optional: splits a history into independent sub-histories (for example one per key). */
  partition?(operations: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  describeOperation?(input: Input, output: Output | undefined): string;
}

export type Verdict = 'linearizable' | 'not-linearizable' | 'unknown';

export interface PartitionResult {
  verdict: Verdict;
  operationCount: number;
  searchSteps: number;
  /**
   * When not linearizable: the operations of the partition (sorted by call time, each with client,
   * call/return times and description) and the longest linearizable prefix found. When unknown: why
   * the search gave up.
   */
  explanation?: string;
}

export interface CheckResult {
  verdict: Verdict;
  partitions: PartitionResult[];
}

export interface CheckOptions {
  /** Upper bound on search steps per partition; beyond it the partition's verdict is 'unknown'. */
  maxSearchSteps?: number;
}

export const DEFAULT_MAX_SEARCH_STEPS = 5_000_000;

/** Checks whether history is linearizable with respect to model. */
export function checkHistory<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult {
  const maxSearchSteps = options.maxSearchSteps ?? DEFAULT_MAX_SEARCH_STEPS;
  if (!Number.isSafeInteger(maxSearchSteps) || maxSearchSteps < 1) {
    throw new Error(`maxSearchSteps must be a positive integer, got ${maxSearchSteps}`);
  }
  history.forEach(validateOperation);

  const historyIndexOf = new Map<Operation<I, O>, number>();
  history.forEach((operation, index) => historyIndexOf.set(operation, index));
  const subHistories = model.partition ? model.partition(history) : [history];
  const partitions = subHistories.map((operations) =>
    checkPartition(model, operations, historyIndexOf, maxSearchSteps),
  );
  return { verdict: combineVerdicts(partitions.map((partition) => partition.verdict)), partitions };
}

function combineVerdicts(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.includes('not-linearizable')) return 'not-linearizable';
  if (verdicts.includes('unknown')) return 'unknown';
  return 'linearizable';
}

function validateOperation<I, O>(operation: Operation<I, O>, index: number): void {
  const name = `operation #${index} (client ${operation.clientId})`;
  if (!Number.isFinite(operation.callTime)) {
    throw new Error(`${name}: callTime must be a finite number, got ${operation.callTime}`);
  }
  if (operation.returnTime === undefined) {
    if (operation.output !== undefined) {
      throw new Error(`${name}: has an output but no returnTime; both must be undefined for an unknown outcome`);
    }
    return;
  }
  if (!Number.isFinite(operation.returnTime)) {
    throw new Error(`${name}: returnTime must be a finite number or undefined, got ${operation.returnTime}`);
  }
  if (operation.returnTime < operation.callTime) {
    throw new Error(`${name}: returnTime ${operation.returnTime} is before callTime ${operation.callTime}`);
  }
  if (operation.output === undefined) {
    throw new Error(`${name}: has a returnTime but no output; both must be undefined for an unknown outcome`);
  }
}

// ---------------------------------------------------------------------------------------------
// The entry list.
//
// Entries live in flat arrays indexed by entry number; entry 0 is the list head (a sentinel) and
// NO_ENTRY marks the end. Removing ("lifting") an operation unlinks its call and return entries in
// place so that backtracking can relink them cheaply, as in Knuth's dancing links.

const NO_ENTRY = -1;
const HEAD = 0;

interface EntryList {
  /** For each entry: the index of its operation within the partition. */
  operationOf: Int32Array;
  /** For each entry: whether it is a call (otherwise it is a return). */
  isCall: Uint8Array;
  /** For each call entry: its return entry. */
  returnEntryOf: Int32Array;
  next: Int32Array;
  previous: Int32Array;
}

interface TimedEntry {
  time: number;
  isCall: boolean;
  operationIndex: number;
}

function buildEntryList<I, O>(operations: readonly Operation<I, O>[]): EntryList {
  const timed: TimedEntry[] = [];
  operations.forEach((operation, operationIndex) => {
    timed.push({ time: operation.callTime, isCall: true, operationIndex });
    // An unknown outcome may take effect at any moment after the call, so its return goes last.
    timed.push({ time: operation.returnTime ?? Infinity, isCall: false, operationIndex });
  });
  // At equal times calls go before returns, so operations that merely touch count as concurrent;
  // this errs on the side of accepting a history rather than reporting a false violation.
  timed.sort(
    (a, b) =>
      a.time - b.time ||
      Number(b.isCall) - Number(a.isCall) ||
      a.operationIndex - b.operationIndex,
  );

  const entryCount = timed.length + 1;
  const list: EntryList = {
    operationOf: new Int32Array(entryCount).fill(NO_ENTRY),
    isCall: new Uint8Array(entryCount),
    returnEntryOf: new Int32Array(entryCount).fill(NO_ENTRY),
    next: new Int32Array(entryCount),
    previous: new Int32Array(entryCount),
  };
  const callEntryOfOperation = new Int32Array(operations.length);
  timed.forEach((entry, position) => {
    const entryIndex = position + 1;
    list.operationOf[entryIndex] = entry.operationIndex;
    list.isCall[entryIndex] = entry.isCall ? 1 : 0;
    if (entry.isCall) {
      callEntryOfOperation[entry.operationIndex] = entryIndex;
    } else {
      list.returnEntryOf[callEntryOfOperation[entry.operationIndex] ?? NO_ENTRY] = entryIndex;
    }
  });
  for (let entryIndex = 0; entryIndex < entryCount; entryIndex++) {
    list.previous[entryIndex] = entryIndex - 1;
    list.next[entryIndex] = entryIndex + 1 < entryCount ? entryIndex + 1 : NO_ENTRY;
  }
  return list;
}

function unlinkEntry(list: EntryList, entry: number): void {
  const before = list.previous[entry] ?? NO_ENTRY;
  const after = list.next[entry] ?? NO_ENTRY;
  list.next[before] = after;
  if (after !== NO_ENTRY) list.previous[after] = before;
}

function relinkEntry(list: EntryList, entry: number): void {
  const before = list.previous[entry] ?? NO_ENTRY;
  const after = list.next[entry] ?? NO_ENTRY;
  list.next[before] = entry;
  if (after !== NO_ENTRY) list.previous[after] = entry;
}

function liftOperation(list: EntryList, callEntry: number): void {
  unlinkEntry(list, callEntry);
  unlinkEntry(list, list.returnEntryOf[callEntry] ?? NO_ENTRY);
}

/** Undoes liftOperation; relinking in reverse order restores the list exactly. */
function unliftOperation(list: EntryList, callEntry: number): void {
  relinkEntry(list, list.returnEntryOf[callEntry] ?? NO_ENTRY);
  relinkEntry(list, callEntry);
}

// ---------------------------------------------------------------------------------------------
// The set of linearized operations, as a bitset.

class OperationBitset {
  readonly words: Uint32Array;

  constructor(operationCount: number) {
    this.words = new Uint32Array(Math.ceil(operationCount / 32));
  }

  toggle(operationIndex: number): void {
    const wordIndex = operationIndex >>> 5;
    this.words[wordIndex] = (this.words[wordIndex] ?? 0) ^ (1 << (operationIndex & 31));
  }

  /** A compact string identifying the set: two UTF-16 code units per 32-bit word. */
  key(): string {
    let key = '';
    for (const word of this.words) key += String.fromCharCode(word & 0xffff, word >>> 16);
    return key;
  }
}

// ---------------------------------------------------------------------------------------------
// The search.

interface SearchFrame<S> {
  callEntry: number;
  /** The model state before this operation was linearized, restored on backtracking. */
  stateBefore: S;
}

interface SearchOutcome {
  verdict: Verdict;
  searchSteps: number;
  /** Operation indices of the longest linearizable prefix found, in linearization order. */
  longestPrefix: number[];
  stateKeyAfterLongestPrefix: string;
}

function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  maxSearchSteps: number,
): SearchOutcome {
  const list = buildEntryList(operations);
  const linearized = new OperationBitset(operations.length);
  const explored = new Set<string>();
  const frames: SearchFrame<S>[] = [];
  let state = model.init();
  let longestPrefix: number[] = [];
  let stateKeyAfterLongestPrefix = model.stateKey(state);
  const outcome = (verdict: Verdict, searchSteps: number): SearchOutcome => ({
    verdict,
    searchSteps,
    longestPrefix,
    stateKeyAfterLongestPrefix,
  });

  let entry = list.next[HEAD] ?? NO_ENTRY;
  for (let searchSteps = 1; ; searchSteps++) {
    if (entry === NO_ENTRY) return outcome('linearizable', searchSteps);
    if (searchSteps > maxSearchSteps) return outcome('unknown', maxSearchSteps);
    const operationIndex = list.operationOf[entry] ?? NO_ENTRY;
    const operation = operations[operationIndex];
    if (operation === undefined) throw new Error(`internal error: entry ${entry} has no operation`);

    if (list.isCall[entry] === 1) {
      const stepResult = model.step(state, operation.input, operation.output);
      let lifted = false;
      if (stepResult.ok) {
        linearized.toggle(operationIndex);
        const cacheKey = `${linearized.key()}|${model.stateKey(stepResult.state)}`;
        if (!explored.has(cacheKey)) {
          explored.add(cacheKey);
          frames.push({ callEntry: entry, stateBefore: state });
          state = stepResult.state;
          liftOperation(list, entry);
          lifted = true;
          if (frames.length > longestPrefix.length) {
            longestPrefix = frames.map((frame) => list.operationOf[frame.callEntry] ?? NO_ENTRY);
            stateKeyAfterLongestPrefix = model.stateKey(state);
          }
        } else {
          linearized.toggle(operationIndex);
        }
      }
      entry = lifted ? (list.next[HEAD] ?? NO_ENTRY) : (list.next[entry] ?? NO_ENTRY);
      continue;
    }

    if (operation.returnTime === undefined) {
      // Returns sort by time and unknown outcomes return at infinity, so reaching one means every
      // operation with a known outcome is linearized. The remaining unknown-outcome operations
      // can be taken to have never happened, which is always allowed.
      return outcome('linearizable', searchSteps);
    }
    // This operation returned without having been linearized: undo the most recent choice.
    const frame = frames.pop();
    if (frame === undefined) return outcome('not-linearizable', searchSteps);
    state = frame.stateBefore;
    linearized.toggle(list.operationOf[frame.callEntry] ?? NO_ENTRY);
    unliftOperation(list, frame.callEntry);
    entry = list.next[frame.callEntry] ?? NO_ENTRY;
  }
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  historyIndexOf: ReadonlyMap<Operation<I, O>, number>,
  maxSearchSteps: number,
): PartitionResult {
  const outcome = searchPartition(model, operations, maxSearchSteps);
  const result: PartitionResult = {
    verdict: outcome.verdict,
    operationCount: operations.length,
    searchSteps: outcome.searchSteps,
  };
  if (outcome.verdict === 'not-linearizable') {
    result.explanation = explainViolation(model, operations, historyIndexOf, outcome);
  } else if (outcome.verdict === 'unknown') {
    result.explanation =
      `Gave up after ${maxSearchSteps} search steps on a partition of ${operations.length} operations; ` +
      `the longest linearizable prefix found has ${outcome.longestPrefix.length} operations.`;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Explanations.

function explainViolation<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  historyIndexOf: ReadonlyMap<Operation<I, O>, number>,
  outcome: SearchOutcome,
): string {
  const describe = (operationIndex: number): string => {
    const operation = operations[operationIndex];
    if (operation === undefined) return `(missing operation ${operationIndex})`;
    const label = labelOperation(operation, operationIndex, historyIndexOf);
    const returnTime = operation.returnTime === undefined ? '?' : String(operation.returnTime);
    const description = model.describeOperation
      ? model.describeOperation(operation.input, operation.output)
      : describeGenerically(operation.input, operation.output);
    return `${label} client ${operation.clientId} [${operation.callTime}, ${returnTime}] ${description}`;
  };

  const byCallTime = operations
    .map((_, operationIndex) => operationIndex)
    .sort((a, b) => (operations[a]?.callTime ?? 0) - (operations[b]?.callTime ?? 0) || a - b);
  const inPrefix = new Set(outcome.longestPrefix);
  const firstStuck = byCallTime
    .filter((operationIndex) => !inPrefix.has(operationIndex))
    .filter((operationIndex) => operations[operationIndex]?.returnTime !== undefined)
    .sort((a, b) => (operations[a]?.returnTime ?? 0) - (operations[b]?.returnTime ?? 0))[0];

  const lines = [
    `Not linearizable: no order of these ${operations.length} operations is consistent with the model.`,
    'Operations (sorted by call time; times are [call, return], "?" = outcome unknown):',
    ...byCallTime.map((operationIndex) => `  ${describe(operationIndex)}`),
    `Longest linearizable prefix found (${outcome.longestPrefix.length} of ${operations.length} operations):`,
    ...outcome.longestPrefix.map((operationIndex) => `  ${describe(operationIndex)}`),
    `State after that prefix: ${outcome.stateKeyAfterLongestPrefix}`,
  ];
  if (firstStuck !== undefined) {
    lines.push(`The earliest-returning operation left out of it: ${describe(firstStuck)}`);
  }
  return lines.join('\n');
}

function labelOperation<I, O>(
  operation: Operation<I, O>,
  operationIndex: number,
  historyIndexOf: ReadonlyMap<Operation<I, O>, number>,
): string {
  const historyIndex = historyIndexOf.get(operation);
  // Partitions normally hold the history's own objects; a model that copies them loses the link.
  return historyIndex === undefined ? `partition op ${operationIndex}` : `#${historyIndex}`;
}

function describeGenerically(input: unknown, output: unknown): string {
  const outputText = output === undefined ? '?' : JSON.stringify(output);
  return `${JSON.stringify(input)} -> ${outputText}`;
}
