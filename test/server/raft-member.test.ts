// The member's run loop on in-memory fakes: a hand-driven clock, a durable log that records what
// it was asked to persist, and a tiny state machine.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Entry, HardState, Message, Snapshot } from '../../src/consensus/types.ts';
import { message } from '../../src/consensus/types.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { ANSWERS_PER_TURN, COMMIT_NOTICE_HOLD_MS, MemberError, RaftMember } from '../../src/server/raft-member.ts';
import type { DurableLog, MemberTimers, RaftMemberOptions, SnapshotSavedReport, StateMachine } from '../../src/server/raft-member.ts';
import { decodeMemberSnapshot } from '../../src/server/member-snapshot.ts';
import { decodeEnvelope, encodeEnvelope } from '../../src/server/proposal-envelope.ts';

class ManualTimers implements MemberTimers {
  private clockMs: number;
  constructor(startMs = 1_000) {
    this.clockMs = startMs;
  }
  nowMs(): number {
    return this.clockMs;
  }
  private nextHandle = 1;
  private readonly timers = new Map<number, { at: number; every?: number; callback: () => void }>();
  setInterval(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.clockMs + ms, every: ms, callback });
    return handle;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.clockMs + ms, callback });
    return handle;
  }
  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  nextTurn(callback: () => void): void {
    setImmediate(callback);
  }
  /** Advances time step by step, running due timers and letting the run loop's promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.clockMs + ms;
    while (this.clockMs < end) {
      this.clockMs++;
      for (const [handle, timer] of [...this.timers]) {
        if (timer.at > this.clockMs) continue;
        if (timer.every) timer.at += timer.every;
        else this.timers.delete(handle);
        timer.callback();
      }
      await settle();
    }
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

class RecordingLog implements DurableLog {
  saves = 0;
  snapshots: Snapshot[] = [];
  failWith: Error | undefined;
  readonly persisted: MemoryStorage;
  constructor(persisted = MemoryStorage.bootstrap({ voters: [1n], learners: [] })) {
    this.persisted = persisted;
  }
  async save(hardState: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.saves++;
    if (hardState) this.persisted.setHardState(hardState);
    this.persisted.append(entries);
  }
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.snapshots.push(snapshot);
  }
  async releaseBefore(): Promise<void> {}
}

/** A counter: every command adds its single byte to the total and returns the new total. */
class Counter implements StateMachine<number> {
  total = 0;
  apply(payload: Uint8Array): number {
    this.total += payload[0]!;
    return this.total;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.total));
  }
  restore(data: Uint8Array): void {
    this.total = Number(new TextDecoder().decode(data));
  }
}

/** A counter whose snapshot is captured at once and handed out after `slices` steps, after the member's prefix. */
class SlicedCounter extends Counter {
  /** The counter's total at each capture and at each step of its encoding. */
  readonly totalsSeen: number[] = [];
  private readonly slices: number;
  private readonly ignorePrefix: boolean;
  /** ignorePrefix breaks the contract: no room is left for the member's envelope. */
  constructor(slices: number, ignorePrefix = false) {
    super();
    this.slices = slices;
    this.ignorePrefix = ignorePrefix;
  }
  captureSnapshot(prefixBytes: number): { step(maxKeys: number): Uint8Array | undefined } {
    const state = this.snapshot();
    const roomBytes = this.ignorePrefix ? 0 : prefixBytes;
    const captured = new Uint8Array(roomBytes + state.byteLength);
    captured.set(state, roomBytes);
    this.totalsSeen.push(this.total);
    let steps = 0;
    return {
      step: () => {
        this.totalsSeen.push(this.total);
        return ++steps >= this.slices ? captured : undefined;
      },
    };
  }
}

function singleMember(overrides: {
  snapshotEveryEntries?: number; storage?: MemoryStorage; log?: RecordingLog; startMs?: number; maxPendingProposals?: number;
  machine?: Counter; onSnapshotSaved?: RaftMemberOptions<number>['onSnapshotSaved']; onFatal?: (error: Error) => void;
} = {}) {
  const timers = new ManualTimers(overrides.startMs);
  const log = overrides.log ?? new RecordingLog();
  const machine = overrides.machine ?? new Counter();
  const member = new RaftMember<number>({
    id: 1n,
    storage: overrides.storage ?? MemoryStorage.bootstrap({ voters: [1n], learners: [] }),
    durableLog: log,
    stateMachine: machine,
    transport: { send: () => {} },
    timers,
    random: new SeededRandom(1),
    tickIntervalMs: 10,
    electionTicks: 10,
    heartbeatTicks: 1,
    snapshotEveryEntries: overrides.snapshotEveryEntries ?? 1000,
    keptEntriesAfterSnapshot: 2,
    proposalTimeoutMs: 500,
    maxPendingProposals: overrides.maxPendingProposals ?? 4,
    appliedRequestsWindow: 100,
    onSnapshotSaved: overrides.onSnapshotSaved,
    onFatal: overrides.onFatal ?? ((error) => {
      throw error;
    }),
  });
  return { timers, log, machine, member };
}

test('a single member elects itself, applies proposals in order, and answers each with its result', async () => {
  const { timers, member, log } = singleMember();
  member.start();
  await timers.advance(5);
  assert.equal(member.isLeader(), true);
  const results = await Promise.all([member.propose(Uint8Array.of(1)), member.propose(Uint8Array.of(2)), member.propose(Uint8Array.of(3))]);
  assert.deepEqual(results.sort((a, b) => a - b), [1, 3, 6]);
  assert.ok(log.saves >= 1);
  assert.equal(log.persisted.lastIndex(), member.appliedIndex(), 'everything applied was persisted first');
  member.stop();
});

test('propose copies its payload before returning: one buffer reused for every proposal (as encodeCommandView is) applies each value', async () => {
  const { timers, member } = singleMember();
  member.start();
  await timers.advance(5);
  const shared = new Uint8Array(1);
  const answers: Promise<number>[] = [];
  for (const value of [1, 2, 4]) {
    shared[0] = value;
    answers.push(member.propose(shared));
  }
  shared[0] = 100;
  assert.deepEqual(await Promise.all(answers), [1, 3, 7]);
  member.stop();
});

test('a batch of applied proposals is answered ANSWERS_PER_TURN per turn of the event loop, in order, every one', async () => {
  const { timers, member } = singleMember({ maxPendingProposals: 100 });
  member.start();
  await timers.advance(5);
  let turn = 0;
  let counting = true;
  const countTurns = () => {
    turn++;
    if (counting) setImmediate(countTurns);
  };
  setImmediate(countTurns);
  const answered: { result: number; turn: number }[] = [];
  const count = 2 * ANSWERS_PER_TURN + 8;
  const proposals = Array.from({ length: count }, () => member.propose(Uint8Array.of(1)).then((result) => answered.push({ result, turn })));
  await Promise.all(proposals);
  counting = false;
  assert.deepEqual(answered.map((a) => a.result), Array.from({ length: count }, (_, i) => i + 1), 'answered in the order applied');
  const perTurn = new Map<number, number>();
  for (const { turn: at } of answered) perTurn.set(at, (perTurn.get(at) ?? 0) + 1);
  assert.ok(Math.max(...perTurn.values()) <= ANSWERS_PER_TURN, `at most ${ANSWERS_PER_TURN} answers per turn, got ${JSON.stringify([...perTurn])}`);
  assert.ok(perTurn.size >= 3, `the ${count} answers took at least three turns`);
  member.stop();
});

test('the first answers go out in the turn of their apply, not a turn later', async () => {
  // A turn saved here is a turn saved per write at one client: node:http2 then needs two more to
  // send the message and the trailers.
  let turn = 0;
  let counting = true;
  const countTurns = () => {
    turn++;
    if (counting) setImmediate(countTurns);
  };
  const appliedAtTurn: number[] = [];
  class TurnRecordingCounter extends Counter {
    override apply(payload: Uint8Array): number {
      appliedAtTurn.push(turn);
      return super.apply(payload);
    }
  }
  const { timers, member } = singleMember({ maxPendingProposals: 100, machine: new TurnRecordingCounter() });
  member.start();
  await timers.advance(5);
  setImmediate(countTurns);
  const answeredAtTurn: number[] = [];
  await Promise.all([1, 2, 3].map(() => member.propose(Uint8Array.of(1)).then(() => answeredAtTurn.push(turn))));
  counting = false;
  assert.deepEqual(answeredAtTurn, appliedAtTurn);
  member.stop();
});

test('a read barrier resolves once the state machine has applied every write acknowledged before it', async () => {
  const { timers, member, machine } = singleMember();
  member.start();
  await timers.advance(5);
  const write = member.propose(Uint8Array.of(7));
  // Concurrent with the write: either outcome is linearizable, and the barrier must not hang.
  await member.readBarrier();
  assert.ok(machine.total === 0 || machine.total === 7);
  await write;
  const second = member.propose(Uint8Array.of(3));
  await second;
  await member.readBarrier();
  assert.equal(machine.total, 10, 'everything acknowledged before the barrier is applied');
  member.stop();
});

test('proposals beyond maxPendingProposals are refused at once; a stopped member refuses everything', async () => {
  const { timers, member } = singleMember();
  member.start();
  await timers.advance(5);
  const pending = [1, 2, 3, 4].map((n) => member.propose(Uint8Array.of(n)));
  await assert.rejects(member.propose(Uint8Array.of(5)), (error: MemberError) => error.code === 'CONCORD_E_TOO_MANY_PENDING');
  await Promise.all(pending);
  member.stop();
  await assert.rejects(member.propose(Uint8Array.of(1)), (error: MemberError) => error.code === 'CONCORD_E_STOPPED');
});

test('snapshots are taken every snapshotEveryEntries and a restart from them restores the state', async () => {
  const first = singleMember({ snapshotEveryEntries: 3 });
  first.member.start();
  await first.timers.advance(5);
  for (const n of [1, 2, 3, 4, 5]) await first.member.propose(Uint8Array.of(n));
  assert.ok(first.log.snapshots.length >= 1, 'a snapshot was taken');
  first.member.stop();

  // Restart from the persisted log plus the latest snapshot, as the server does from disk.
  const latest = first.log.snapshots[first.log.snapshots.length - 1]!;
  const storage = MemoryStorage.bootstrap({ voters: [1n], learners: [] });
  storage.applySnapshot(latest);
  storage.append(first.log.persisted.allEntries().filter((e) => e.index > latest.metadata.index));
  // As recovery does (toMemoryStorage): a commit index is persisted only with other changes, so the
  // snapshot's index counts as committed.
  const persistedHardState = first.log.persisted.hardState;
  storage.setHardState({ ...persistedHardState, commit: Math.max(persistedHardState.commit, latest.metadata.index) });
  // The restarted member's clock has moved on, so its request IDs do not repeat the first one's.
  const second = singleMember({ storage, log: new RecordingLog(storage.clone()), startMs: 5_000 });
  second.member.start();
  await second.timers.advance(30);
  assert.equal(second.machine.total, 15, 'snapshot plus replayed entries give the same state');
  assert.equal(await second.member.propose(Uint8Array.of(1)), 16);
  second.member.stop();
});

test('a snapshot is encoded over several turns while the member goes on applying; the saved one holds the state at the capture and is reported', async () => {
  const reports: SnapshotSavedReport[] = [];
  const machine = new SlicedCounter(5);
  const { timers, member, log } = singleMember({ snapshotEveryEntries: 3, machine, maxPendingProposals: 10, onSnapshotSaved: (report) => reports.push(report) });
  member.start();
  await timers.advance(5);
  for (const n of [1, 2, 3]) await member.propose(Uint8Array.of(n));
  // The snapshot is captured at the third applied entry; these are applied during its slices.
  await Promise.all([member.propose(Uint8Array.of(10)), member.propose(Uint8Array.of(20))]);
  await member.snapshotSettled();
  assert.equal(machine.total, 36);
  const [capturedTotal, ...totalsAtSteps] = machine.totalsSeen;
  assert.equal(totalsAtSteps.length, 5, 'one capture, then five steps');
  assert.ok(totalsAtSteps.at(-1)! > capturedTotal!, `applied between the steps: ${machine.totalsSeen.join(', ')}`);
  const saved = log.snapshots[0]!;
  assert.equal(new TextDecoder().decode(decodeMemberSnapshot(saved.data).stateMachine), String(capturedTotal), 'the state at the capture, not after');
  assert.deepEqual(reports.map((report) => [report.index, report.dataBytes]), [[saved.metadata.index, saved.data.byteLength]]);
  member.stop();
});

test('a state machine whose snapshot leaves no room for the envelope stops the member with an error, and nothing is saved', async () => {
  const fatal: Error[] = [];
  const { timers, member, log } = singleMember({ snapshotEveryEntries: 3, machine: new SlicedCounter(2, true), onFatal: (error) => fatal.push(error) });
  member.start();
  await timers.advance(5);
  for (const n of [1, 2, 3]) await member.propose(Uint8Array.of(n)).catch(() => {});
  await member.snapshotSettled();
  assert.match(fatal[0]?.message ?? '', /does not begin with the \d+ empty bytes asked for the member's envelope/);
  assert.equal(log.snapshots.length, 0);
});

test('a request proposed twice (re-forwarded after a leader change) takes effect once', async () => {
  const { timers, member, machine, log } = singleMember();
  member.start();
  await timers.advance(5);
  const result = member.propose(Uint8Array.of(10));
  // Propose the very same envelope again, as a re-proposal after a leader change would.
  const entry = log.persisted.allEntries().find((e) => e.data.byteLength > 0) ?? undefined;
  await result;
  const original = entry ?? log.persisted.allEntries().find((e) => e.data.byteLength > 0)!;
  assert.equal(decodeEnvelope(original.data).memberId, 1n);
  member.node.propose(original.data);
  await timers.advance(5);
  assert.equal(machine.total, 10, 'the duplicate was skipped');
  assert.ok(log.persisted.lastIndex() >= 3, 'the duplicate did reach the log');
  member.stop();
});

test('a disk that refuses writes disables writes with a clear error, and reads keep working', async () => {
  const { timers, member, log, machine } = singleMember();
  member.start();
  await timers.advance(5);
  await member.propose(Uint8Array.of(4));
  log.failWith = Object.assign(new Error('no space left on device while writing the WAL'), { code: 'CONCORD_E_NO_SPACE' });
  await assert.rejects(member.propose(Uint8Array.of(1)), (error: MemberError) => error.code === 'CONCORD_E_WRITES_DISABLED' && /no space/.test(error.message));
  await assert.rejects(member.propose(Uint8Array.of(1)), /writes are disabled/);
  assert.equal(machine.total, 4, 'the acknowledged write is intact and served');
  member.stop();
});

test('a proposal that cannot be applied in time fails with a timeout', async () => {
  const { timers, member } = singleMember();
  // Never started: no leader, so the proposal cannot commit.
  const proposal = member.propose(Uint8Array.of(1));
  const outcome = assert.rejects(proposal, (error: MemberError) => error.code === 'CONCORD_E_TIMEOUT');
  await timers.advance(600);
  await outcome;
});

test('each proposal times out at its own deadline, though one timer serves them all', async () => {
  const { timers, member } = singleMember();
  // Never started: no leader, so no proposal can commit.
  const outcomes = new Map<string, string>();
  const track = (name: string, proposal: Promise<number>) => proposal.then(
    () => outcomes.set(name, 'applied'), (error: MemberError) => outcomes.set(name, `${error.code} at ${timers.nowMs()}`));
  const first = track('first', member.propose(Uint8Array.of(1)));
  await timers.advance(300);
  const second = track('second', member.propose(Uint8Array.of(2)));
  await timers.advance(210);
  await first;
  assert.deepEqual([...outcomes], [['first', 'CONCORD_E_TIMEOUT at 1500']], 'the first at its deadline, the second still waiting');
  await timers.advance(300);
  await second;
  assert.deepEqual(outcomes.get('second'), 'CONCORD_E_TIMEOUT at 1800');
});

/** A disk whose writes complete only when the test says so, to look at the member mid-fsync. */
class HeldLog implements DurableLog {
  private readonly waiting: (() => void)[] = [];
  readonly persisted = MemoryStorage.bootstrap({ voters: [1n, 2n, 3n], learners: [] });
  save(hardState: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    return new Promise((resolve) => this.waiting.push(() => {
      if (hardState) this.persisted.setHardState(hardState);
      this.persisted.append(entries);
      resolve();
    }));
  }
  get pendingSaves(): number {
    return this.waiting.length;
  }
  completeOne(): void {
    this.waiting.shift()?.();
  }
  async saveSnapshot(): Promise<void> {}
  async releaseBefore(): Promise<void> {}
}

/** Completes every write, letting the member start the next one (if any) after each. */
async function completeSaves(log: HeldLog): Promise<void> {
  while (log.pendingSaves > 0) {
    log.completeOne();
    await settle();
  }
}

/** Member 2 of a 3-member cluster, its messages recorded instead of sent. */
function followerOfThree(overrides: { snapshotEveryEntries?: number; onSnapshotSaved?: RaftMemberOptions<number>['onSnapshotSaved']; heartbeatTicks?: number } = {}) {
  const timers = new ManualTimers();
  const log = new HeldLog();
  const sent: Message[] = [];
  const member = new RaftMember<number>({
    id: 2n,
    storage: MemoryStorage.bootstrap({ voters: [1n, 2n, 3n], learners: [] }),
    durableLog: log,
    stateMachine: new Counter(),
    transport: { send: (messages) => sent.push(...messages) },
    timers,
    random: new SeededRandom(2),
    tickIntervalMs: 10,
    electionTicks: 10,
    heartbeatTicks: overrides.heartbeatTicks ?? 1,
    snapshotEveryEntries: overrides.snapshotEveryEntries ?? 1000,
    onSnapshotSaved: overrides.onSnapshotSaved,
    keptEntriesAfterSnapshot: 2,
    proposalTimeoutMs: 5_000,
    maxPendingProposals: 100,
    appliedRequestsWindow: 100,
    onFatal: (error) => {
      throw error;
    },
  });
  return { timers, log, sent, member };
}

test('a member waiting for an fsync forwards a proposal to the leader at once; its acknowledgement waits for the fsync', async () => {
  const { timers, log, sent, member } = followerOfThree();
  member.start();
  // Leader 1 of term 1 appends its no-op: member 2 starts writing it (the write is held).
  member.step(message({
    type: 'MsgApp', from: 1n, to: 2n, term: 1, index: 0, logTerm: 0, commit: 0,
    entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array(0) }],
  }));
  await settle();
  assert.equal(log.pendingSaves, 1, 'the append is being written');
  assert.deepEqual(sent.map((m) => m.type), [], 'nothing is acknowledged before the write completes');
  const proposal = member.propose(Uint8Array.of(5));
  await settle();
  assert.deepEqual(sent.map((m) => `${m.type} ->${m.to}`), ['MsgProp ->1'], 'the proposal went to the leader while the write was in flight');
  log.completeOne();
  await settle();
  assert.deepEqual(sent.map((m) => m.type), ['MsgProp', 'MsgAppResp'], 'the acknowledgement followed the write');
  member.stop();
  await assert.rejects(proposal, (error: MemberError) => error.code === 'CONCORD_E_STOPPED');
  void timers;
});

/** Makes member 2 of followerOfThree() the leader, its no-op acknowledged by both followers and every write completed. */
async function electLeaderOfThree({ timers, log, sent, member }: ReturnType<typeof followerOfThree>): Promise<void> {
  member.start();
  // Win an election: wait for the PreVote, grant it, then grant the vote.
  const answer = async (request: 'MsgPreVote' | 'MsgVote', response: 'MsgPreVoteResp' | 'MsgVoteResp') => {
    for (let i = 0; i < 100 && !sent.some((m) => m.type === request); i++) {
      await timers.advance(10);
      await completeSaves(log);
    }
    const asked = sent.find((m) => m.type === request && m.to === 1n)!;
    member.step(message({ type: response, from: 1n, to: 2n, term: asked.term }));
    await settle();
  };
  await answer('MsgPreVote', 'MsgPreVoteResp');
  await answer('MsgVote', 'MsgVoteResp');
  await completeSaves(log);
  assert.equal(member.isLeader(), true);
  // Both followers acknowledge the leader's no-op, so it replicates to them in a pipeline.
  for (const append of sent.filter((m) => m.type === 'MsgApp')) {
    member.step(message({ type: 'MsgAppResp', from: append.to, to: 2n, term: member.term(), index: append.index + append.entries.length }));
  }
  await settle();
  await completeSaves(log);
}

test('a leader waiting for an fsync sends the appends of new proposals at once, and commits only with a majority on disk', async () => {
  const cluster = followerOfThree();
  const { log, sent, member } = cluster;
  await electLeaderOfThree(cluster);
  const first = member.propose(Uint8Array.of(1));
  await settle();
  assert.equal(log.pendingSaves, 1, "the leader is writing the first proposal's entry");
  sent.length = 0;
  const second = member.propose(Uint8Array.of(2));
  await settle();
  const appends = sent.filter((m) => m.type === 'MsgApp');
  assert.deepEqual(appends.map((m) => m.to).sort(), [1n, 3n], 'the second entry went to both followers during the write');
  const lastIndex = appends[0]!.index + appends[0]!.entries.length;
  // Follower 1 acknowledges everything: with the leader's own copy still unwritten, that is two
  // of three disks only for the entries the leader has persisted.
  member.step(message({ type: 'MsgAppResp', from: 1n, to: 2n, term: member.term(), index: lastIndex }));
  await settle();
  assert.ok(member.committedIndex() < lastIndex, 'nothing the leader has not persisted is committed on one acknowledgement');
  await completeSaves(log);
  assert.equal(member.committedIndex(), lastIndex, 'committed once the leader persisted its copy');
  assert.deepEqual([await first, await second], [1, 3]);
  member.stop();
});

test('proposals made in one turn of the event loop reach the leader as one batch', async () => {
  const { log, sent, member } = followerOfThree();
  member.start();
  member.step(message({
    type: 'MsgApp', from: 1n, to: 2n, term: 1, index: 0, logTerm: 0, commit: 0,
    entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array(0) }],
  }));
  await settle();
  log.completeOne();
  await settle();
  sent.length = 0;
  const proposals = [1, 2, 3].map((n) => member.propose(Uint8Array.of(n)));
  await settle();
  const forwarded = sent.filter((m) => m.type === 'MsgProp');
  assert.equal(forwarded.length, 1, 'one proposal message');
  assert.deepEqual(forwarded[0]!.entries.map((e) => decodeEnvelope(e.data).payload[0]), [1, 2, 3], 'carrying the three commands in order');
  member.stop();
  await Promise.allSettled(proposals);
});

/**
 * An elected leader of three with one proposal (adding 7) on its own disk and not yet committed: one
 * disk of three is not a majority. `index` is the proposal's entry. With `afterHeartbeat`, the
 * proposal is made right after the leader's heartbeat, so the next one is `heartbeatTicks` away.
 */
async function leaderWithUncommittedProposal(options: { heartbeatTicks?: number; afterHeartbeat?: boolean } = {}) {
  const cluster = followerOfThree({ heartbeatTicks: options.heartbeatTicks });
  const { timers, log, sent, member } = cluster;
  await electLeaderOfThree(cluster);
  if (options.afterHeartbeat) {
    sent.length = 0;
    while (!sent.some((m) => m.type === 'MsgHeartbeat')) await timers.advance(1);
  }
  const proposal = member.propose(Uint8Array.of(7));
  await settle();
  const append = sent.filter((m) => m.type === 'MsgApp').at(-1)!;
  const index = append.index + append.entries.length;
  await completeSaves(log);
  assert.equal(member.committedIndex() < index, true, 'one disk of three is not a majority');
  return { ...cluster, proposal, index };
}

/** Appends without entries, the commit notices among the messages. */
function noticesIn(messages: readonly Message[]): string[] {
  return messages.filter((m) => m.type === 'MsgApp' && m.entries.length === 0).map((m) => `->${m.to} commit ${m.commit}`);
}

test('a leader holds commit notices from followers with no forwarded proposal: the next append carries the commit', async () => {
  const { sent, member, proposal, index } = await leaderWithUncommittedProposal();
  sent.length = 0;
  member.step(message({ type: 'MsgAppResp', from: 1n, to: 2n, term: member.term(), index }));
  assert.equal(await proposal, 7, 'committed, applied and answered');
  await settle();
  assert.deepEqual(noticesIn(sent), [], 'no notice on its own');
  const next = member.propose(Uint8Array.of(1));
  await settle();
  const appends = sent.filter((m) => m.type === 'MsgApp');
  assert.deepEqual(appends.map((m) => `->${m.to} ${m.entries.length} entry, commit ${m.commit}`).sort(),
    [`->1 1 entry, commit ${index}`, `->3 1 entry, commit ${index}`], "the next write's appends tell both followers of the commit");
  member.stop();
  await assert.rejects(next, (error: MemberError) => error.code === 'CONCORD_E_STOPPED');
});

test('a held commit notice goes out COMMIT_NOTICE_HOLD_MS after the commit when no append carries it', async () => {
  // Heartbeats (which carry the commit too) every 9 ticks of 10 ms: the test starts right after one.
  const { timers, sent, member, proposal, index } = await leaderWithUncommittedProposal({ heartbeatTicks: 9, afterHeartbeat: true });
  member.step(message({ type: 'MsgAppResp', from: 1n, to: 2n, term: member.term(), index }));
  assert.equal(await proposal, 7);
  sent.length = 0;
  await timers.advance(COMMIT_NOTICE_HOLD_MS - 1);
  assert.deepEqual(sent.filter((m) => m.commit >= index).map((m) => m.type), [], 'nothing tells a follower of the commit before the hold ends');
  await timers.advance(1);
  assert.deepEqual(noticesIn(sent).sort(), [`->1 commit ${index}`, `->3 commit ${index}`]);
  sent.length = 0;
  await timers.advance(COMMIT_NOTICE_HOLD_MS * 2);
  assert.deepEqual(noticesIn(sent), [], 'each notice once');
  member.stop();
});

test("a follower's forwarded proposal: the leader answers its own clients first, then tells that follower of the commit without holding it", async () => {
  const cluster = followerOfThree();
  const { log, sent, member } = cluster;
  await electLeaderOfThree(cluster);
  sent.length = 0;
  // Follower 1 forwards a client's proposal; the leader's own client proposes in the same turn.
  const forwarded = encodeEnvelope({ memberId: 1n, requestId: 1, kind: 'stateMachine', payload: Uint8Array.of(5) });
  member.step(message({ type: 'MsgProp', from: 1n, to: 2n, entries: [{ term: 0, index: 0, type: 'normal', data: forwarded }] }));
  const own = member.propose(Uint8Array.of(2));
  await settle();
  const append = sent.filter((m) => m.type === 'MsgApp' && m.to === 3n).at(-1)!;
  const index = append.index + append.entries.length;
  await completeSaves(log);
  const events: string[] = [];
  let turnsSinceAnswer = 0;
  const countTurns = () => {
    turnsSinceAnswer++;
    if (turnsSinceAnswer < 10) setImmediate(countTurns);
  };
  const answered = own.then((total) => {
    events.push(`answered ${total}`);
    setImmediate(countTurns);
  });
  const send = (sent as Message[]).push.bind(sent);
  sent.push = (...messages: Message[]) => {
    for (const m of messages) events.push(`${m.type} ->${m.to} ${m.entries.length} entries, commit ${m.commit}, ${turnsSinceAnswer} turn(s) after the answer`);
    return send(...messages);
  };
  // Follower 3 (which forwarded nothing) makes the majority.
  member.step(message({ type: 'MsgAppResp', from: 3n, to: 2n, term: member.term(), index }));
  await settle();
  await answered;
  assert.deepEqual(events, [
    'answered 7',
    `MsgApp ->1 0 entries, commit ${index}, 1 turn(s) after the answer`,
  ], 'only the follower whose client waits is told at once');
  member.stop();
});

test('a leader stopped after its apply sends no held commit notice', async () => {
  const { sent, member, proposal, index } = await leaderWithUncommittedProposal();
  member.step(message({ type: 'MsgAppResp', from: 1n, to: 2n, term: member.term(), index }));
  // The answer comes in the turn of the apply, and the held notices turns after it: stop in between.
  assert.equal(await proposal, 7, 'applied and answered');
  const before = sent.length;
  member.stop();
  await settle();
  assert.deepEqual(sent.slice(before).filter((m) => m.type === 'MsgApp' && m.entries.length === 0), [], 'nothing after stop');
});

test('a member of three snapshots at its own phase of the interval, not where the others do', async () => {
  // Member 2 is second of voters 1, 2, 3: with an interval of 30 its phase is 10, so it snapshots at
  // 40 and 70 (more than half an interval after the last one, on the phase), where a lone member
  // would at 30 and 60.
  const saved: number[] = [];
  const { log, member } = followerOfThree({ snapshotEveryEntries: 30, onSnapshotSaved: (report) => saved.push(report.index) });
  member.start();
  for (let index = 1; index <= 80; index++) {
    member.step(message({
      type: 'MsgApp', from: 1n, to: 2n, term: 1, index: index - 1, logTerm: index === 1 ? 0 : 1, commit: index - 1,
      entries: [{ term: 1, index, type: 'normal', data: new Uint8Array(0) }],
    }));
    await settle();
    await completeSaves(log);
    await member.snapshotSettled();
  }
  assert.deepEqual(saved, [40, 70]);
  member.stop();
});
