// A generic linearizability checker: the Wing–Gong search with Lowe's memoization, run separately on
// each independent sub-history the model defines (as Porcupine does).
//
// The search walks a time-ordered list of call and return entries. At a call it tries to linearize
// that operation now (apply it to the model state); at a return it has to backtrack, because the
// operation returning there was not linearized before its response. A cache of (set of linearized
// operations, model state) pairs already explored keeps the search from repeating work.
//
// An operation whose outcome is unknown returns "at infinity": it may be linearized anywhere after
// its call, or left out altogether (it never took effect). Such operations therefore never force a
// backtrack; they are kept out of the entry list and tried separately, only after the known-outcome
// candidates, so that the cache can prune configurations that differ only by having linearized one.

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
// The list holds the calls and returns of the operations with a known outcome. Entries live in flat
// arrays indexed by entry number; entry 0 is the list head (a sentinel) and NO_ENTRY marks the end.
// Removing ("lifting") an operation unlinks its call and return entries in place so that
// backtracking can relink them cheaply, as in Knuth's dancing links.

const NO_ENTRY = -1;
const HEAD = 0;

interface EntryList {
  /** For each entry: the index of its operation within the partition. */
  operationOf: Int32Array;
  /** For each entry: whether it is a call (otherwise it is a return). */
  isCall: Uint8Array;
  /** For each call entry: its return entry. */
  returnEntryOf: Int32Array;
  /**
   * For each operation: its rank among the known-outcome operations in call order. Numbering the
   * linearized set this way keeps it a run of ones followed by a short, sparse window.
   */
  callRankOf: Int32Array;
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
    if (operation.returnTime === undefined) return;
    timed.push({ time: operation.callTime, isCall: true, operationIndex });
    timed.push({ time: operation.returnTime, isCall: false, operationIndex });
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
    callRankOf: new Int32Array(operations.length).fill(NO_ENTRY),
    next: new Int32Array(entryCount),
    previous: new Int32Array(entryCount),
  };
  const callEntryOfOperation = new Int32Array(operations.length);
  let callRank = 0;
  timed.forEach((entry, position) => {
    const entryIndex = position + 1;
    list.operationOf[entryIndex] = entry.operationIndex;
    list.isCall[entryIndex] = entry.isCall ? 1 : 0;
    if (entry.isCall) {
      callEntryOfOperation[entry.operationIndex] = entryIndex;
      list.callRankOf[entry.operationIndex] = callRank++;
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

// The search linearizes operations roughly in call order, so the set is nearly always a run of
// full words, a few mixed words, then empty words. Tracking where the run of full words ends and
// where the empty words begin lets key() encode only the mixed middle, which keeps cache keys short
// however long the history is.

const FULL_WORD = 0xffffffff;

class OperationBitset {
  readonly #words: Uint32Array;
  /** Every word before this one has all bits set. */
  #firstNonFullWord = 0;
  /** Every word after this one has no bits set. */
  #lastNonEmptyWord = -1;

  constructor(memberCount: number) {
    this.#words = new Uint32Array(Math.ceil(memberCount / 32));
  }

  toggle(member: number): void {
    const words = this.#words;
    const wordIndex = member >>> 5;
    const word = (words[wordIndex] ?? 0) ^ (1 << (member & 31));
    words[wordIndex] = word;
    if (word === 0) {
      while (this.#lastNonEmptyWord >= 0 && words[this.#lastNonEmptyWord] === 0) this.#lastNonEmptyWord--;
    } else {
      this.#lastNonEmptyWord = Math.max(this.#lastNonEmptyWord, wordIndex);
    }
    if (words[wordIndex] !== FULL_WORD) {
      this.#firstNonFullWord = Math.min(this.#firstNonFullWord, wordIndex);
    } else {
      while (words[this.#firstNonFullWord] === FULL_WORD) this.#firstNonFullWord++;
    }
  }

  /**
   * A string identifying the set: the number of leading full words, then the words up to the last
   * non-empty one as two UTF-16 code units each.
   */
  key(): string {
    let key = `${this.#firstNonFullWord}:`;
    for (let wordIndex = this.#firstNonFullWord; wordIndex <= this.#lastNonEmptyWord; wordIndex++) {
      const word = this.#words[wordIndex] ?? 0;
      key += String.fromCharCode(word & 0xffff, word >>> 16);
    }
    return key;
  }
}

// ---------------------------------------------------------------------------------------------
// The cache of explored configurations.
//
// A configuration is the set of linearized operations plus the model state. Operations with an
// unknown outcome never constrain the search (they may take effect at any time, or never), so a
// configuration that linearized fewer of them, with the same known-outcome operations and the same
// state, can do everything a configuration that linearized more of them can. The cache therefore
// keys on the known-outcome operations and the state, and keeps for each key the minimal sets of
// unknown-outcome operations explored; a configuration is skipped when one of them is a subset of
// its own. Without unknown-outcome operations this is exactly Lowe's memoization.
//
// Skipping is sound because a configuration is only ever recorded when it is about to be explored
// (or, for unknown-outcome candidates, will be explored before its parent is abandoned), so if the
// search ends without success every recorded configuration has been shown to lead nowhere.

class ExploredConfigurations {
  readonly #unknownSetsByKey = new Map<string, bigint[]>();

  /** Records the configuration and returns true, or returns false when one explored dominates it. */
  addUnlessDominated(knownKey: string, stateKey: string, linearizedUnknowns: bigint): boolean {
    const key = `${knownKey}|${stateKey}`;
    const exploredSets = this.#unknownSetsByKey.get(key);
    if (exploredSets === undefined) {
      this.#unknownSetsByKey.set(key, [linearizedUnknowns]);
      return true;
    }
    if (exploredSets.some((explored) => (explored & ~linearizedUnknowns) === 0n)) return false;
    // Sets that contain the new one are dominated by it from now on; dropping them keeps lists short.
    const minimalSets = exploredSets.filter((explored) => (linearizedUnknowns & ~explored) !== 0n);
    minimalSets.push(linearizedUnknowns);
    this.#unknownSetsByKey.set(key, minimalSets);
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The search.
//
// In the 'known' phase the walk goes down the entry list trying each call; reaching the first
// return entry means every known-outcome candidate has been tried. Then come the unknown-outcome
// operations called no later than that return (the deadline): the 'unknown-register' phase works
// out which of them lead to configurations not explored yet and records all of those in the cache,
// and the 'unknown-explore' phase then explores them one by one. Recording them all before
// exploring any lets the cache prune, inside the first one's subtree, configurations that a later
// sibling (with fewer unknown-outcome operations linearized) will cover; a cached configuration is
// thus always either explored already or certain to be explored unless the search ends first. When
// the candidates are exhausted, the operation returning at the deadline cannot be linearized in
// time, and the search backtracks.

type WalkPhase = 'known' | 'unknown-register' | 'unknown-explore';

interface UnknownCandidate<S> {
  position: number;
  stateAfter: S;
}

/** The unknown-outcome candidates at one configuration, and how far the walk has got with them. */
interface UnknownRound<S> {
  deadlineTime: number;
  nextPositionToRegister: number;
  candidates: UnknownCandidate<S>[];
  nextCandidateToExplore: number;
}

interface SearchFrame<S> {
  operationIndex: number;
  /** For a known-outcome operation: its call entry, where the walk resumes after backtracking. */
  callEntry: number;
  /** For an unknown-outcome operation: the round it was a candidate of, resumed after backtracking. */
  unknownRound: UnknownRound<S> | undefined;
  /** For an unknown-outcome operation: its position in the list of them; otherwise -1. */
  unknownPosition: number;
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

class PartitionSearch<S, I, O> {
  readonly #model: Model<S, I, O>;
  readonly #operations: readonly Operation<I, O>[];
  readonly #list: EntryList;
  /** Indices of the unknown-outcome operations, by call time. */
  readonly #unknownOperations: number[];
  /** Linearized operations with a known outcome, by call rank. */
  readonly #linearizedKnown: OperationBitset;
  /** Linearized unknown-outcome operations: bit i stands for #unknownOperations[i]. */
  #linearizedUnknowns = 0n;
  readonly #explored = new ExploredConfigurations();
  readonly #frames: SearchFrame<S>[] = [];
  #state: S;
  #longestPrefix: number[] = [];
  #stateKeyAfterLongestPrefix: string;

  // Where the walk is: at #entry in the 'known' phase, in #unknownRound otherwise.
  #phase: WalkPhase = 'known';
  #entry: number;
  #unknownRound: UnknownRound<S> = { deadlineTime: 0, nextPositionToRegister: 0, candidates: [], nextCandidateToExplore: 0 };

  constructor(model: Model<S, I, O>, operations: readonly Operation<I, O>[]) {
    this.#model = model;
    this.#operations = operations;
    this.#list = buildEntryList(operations);
    this.#unknownOperations = operations
      .map((_, operationIndex) => operationIndex)
      .filter((operationIndex) => operations[operationIndex]?.returnTime === undefined)
      .sort((a, b) => this.#callTimeOf(a) - this.#callTimeOf(b) || a - b);
    this.#linearizedKnown = new OperationBitset(operations.length);
    this.#state = model.init();
    this.#stateKeyAfterLongestPrefix = model.stateKey(this.#state);
    this.#entry = this.#list.next[HEAD] ?? NO_ENTRY;
  }

  run(maxSearchSteps: number): SearchOutcome {
    for (let searchSteps = 1; ; searchSteps++) {
      if (searchSteps > maxSearchSteps) return this.#outcome('unknown', maxSearchSteps);
      const verdict = this.#step();
      if (verdict !== undefined) return this.#outcome(verdict, searchSteps);
    }
  }

  /** Advances the search by one entry or candidate; returns a verdict once there is one. */
  #step(): Verdict | undefined {
    switch (this.#phase) {
      case 'known':
        return this.#stepKnownPhase();
      case 'unknown-register':
        this.#stepUnknownRegisterPhase();
        return undefined;
      case 'unknown-explore':
        return this.#stepUnknownExplorePhase();
    }
  }

  #stepKnownPhase(): Verdict | undefined {
    const list = this.#list;
    const entry = this.#entry;
    // Every known-outcome operation is linearized; the unknown-outcome ones left over can be taken
    // to have never happened, which is always allowed.
    if (entry === NO_ENTRY) return 'linearizable';
    const operationIndex = list.operationOf[entry] ?? NO_ENTRY;
    if (list.isCall[entry] === 0) {
      const deadlineTime = this.#operations[operationIndex]?.returnTime ?? Infinity;
      this.#unknownRound = { deadlineTime, nextPositionToRegister: 0, candidates: [], nextCandidateToExplore: 0 };
      this.#phase = 'unknown-register';
      return undefined;
    }
    const stateAfter = this.#tryLinearize(operationIndex, 0n);
    if (stateAfter === undefined) {
      this.#entry = list.next[entry] ?? NO_ENTRY;
      return undefined;
    }
    this.#frames.push({ operationIndex, callEntry: entry, unknownRound: undefined, unknownPosition: -1, stateBefore: this.#state });
    this.#state = stateAfter.state;
    liftOperation(list, entry);
    this.#restartWalk();
    return undefined;
  }

  #stepUnknownRegisterPhase(): void {
    const round = this.#unknownRound;
    const position = round.nextPositionToRegister;
    const operationIndex = this.#unknownOperations[position];
    if (operationIndex === undefined || this.#callTimeOf(operationIndex) > round.deadlineTime) {
      this.#phase = 'unknown-explore';
      return;
    }
    round.nextPositionToRegister = position + 1;
    const unknownBit = 1n << BigInt(position);
    if ((this.#linearizedUnknowns & unknownBit) !== 0n) return;
    const stateAfter = this.#tryLinearize(operationIndex, unknownBit);
    if (stateAfter !== undefined) round.candidates.push({ position, stateAfter: stateAfter.state });
  }

  #stepUnknownExplorePhase(): Verdict | undefined {
    const round = this.#unknownRound;
    const candidate = round.candidates[round.nextCandidateToExplore];
    if (candidate === undefined) {
      // The operation returning at the deadline cannot be linearized in time: undo the last choice.
      return this.#backtrack() ? undefined : 'not-linearizable';
    }
    const operationIndex = this.#unknownOperations[candidate.position] ?? NO_ENTRY;
    this.#frames.push({
      operationIndex,
      callEntry: NO_ENTRY,
      unknownRound: round,
      unknownPosition: candidate.position,
      stateBefore: this.#state,
    });
    this.#state = candidate.stateAfter;
    this.#linearizedUnknowns |= 1n << BigInt(candidate.position);
    this.#restartWalk();
    return undefined;
  }

  /**
   * Checks whether linearizing the operation now is allowed by the model and leads to a
   * configuration not explored yet. If so, records the configuration as explored (and, for a
   * known-outcome operation, adds it to #linearizedKnown) and returns the state it leads to.
   * unknownBit is 0n for an operation with a known outcome.
   */
  #tryLinearize(operationIndex: number, unknownBit: bigint): { state: S } | undefined {
    const operation = this.#operations[operationIndex];
    if (operation === undefined) throw new Error(`internal error: no operation ${operationIndex}`);
    const stepResult = this.#model.step(this.#state, operation.input, operation.output);
    if (!stepResult.ok) return undefined;

    const knownRank = this.#list.callRankOf[operationIndex] ?? NO_ENTRY;
    if (unknownBit === 0n) this.#linearizedKnown.toggle(knownRank);
    const isNew = this.#explored.addUnlessDominated(
      this.#linearizedKnown.key(),
      this.#model.stateKey(stepResult.state),
      this.#linearizedUnknowns | unknownBit,
    );
    if (isNew) return { state: stepResult.state };
    if (unknownBit === 0n) this.#linearizedKnown.toggle(knownRank);
    return undefined;
  }

  /** After a linearization, the walk starts over at the head of the list in the 'known' phase. */
  #restartWalk(): void {
    this.#recordIfLongest();
    this.#phase = 'known';
    this.#entry = this.#list.next[HEAD] ?? NO_ENTRY;
  }

  /** Undoes the most recent linearization and resumes the walk after it; false when none is left. */
  #backtrack(): boolean {
    const frame = this.#frames.pop();
    if (frame === undefined) return false;
    this.#state = frame.stateBefore;
    if (frame.unknownRound !== undefined) {
      this.#linearizedUnknowns &= ~(1n << BigInt(frame.unknownPosition));
      frame.unknownRound.nextCandidateToExplore++;
      this.#unknownRound = frame.unknownRound;
      this.#phase = 'unknown-explore';
    } else {
      this.#linearizedKnown.toggle(this.#list.callRankOf[frame.operationIndex] ?? NO_ENTRY);
      unliftOperation(this.#list, frame.callEntry);
      this.#phase = 'known';
      this.#entry = this.#list.next[frame.callEntry] ?? NO_ENTRY;
    }
    return true;
  }

  #callTimeOf(operationIndex: number): number {
    return this.#operations[operationIndex]?.callTime ?? Infinity;
  }

  #recordIfLongest(): void {
    // The prefix grows one operation at a time, so this copies at most once per operation.
    if (this.#frames.length <= this.#longestPrefix.length) return;
    this.#longestPrefix = this.#frames.map((frame) => frame.operationIndex);
    this.#stateKeyAfterLongestPrefix = this.#model.stateKey(this.#state);
  }

  #outcome(verdict: Verdict, searchSteps: number): SearchOutcome {
    return {
      verdict,
      searchSteps,
      longestPrefix: this.#longestPrefix,
      stateKeyAfterLongestPrefix: this.#stateKeyAfterLongestPrefix,
    };
  }
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  historyIndexOf: ReadonlyMap<Operation<I, O>, number>,
  maxSearchSteps: number,
): PartitionResult {
  const outcome = new PartitionSearch(model, operations).run(maxSearchSteps);
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
