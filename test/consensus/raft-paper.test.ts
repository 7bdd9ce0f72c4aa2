// Unit tests of the Raft core against the rules of the Raft paper ("In Search of an Understandable
// Consensus Algorithm", Ongaro & Ousterhout) and of Ongaro's thesis ("Consensus: Bridging Theory and
// Practice"). Each test is named after the sentence it checks, in the spirit of etcd's
// raft_paper_test.go. Messages are stepped directly into `Raft` and its outbox is read back, so no
// network or Ready handling is involved unless the rule is about those.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Raft } from '../../src/consensus/raft.ts';
import type { RaftConfig } from '../../src/consensus/raft.ts';
import { RaftNode } from '../../src/consensus/raft-node.ts';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Entry, Message, MessageType, NodeId } from '../../src/consensus/types.ts';
import { NO_NODE, message } from '../../src/consensus/types.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;
const encoder = new TextEncoder();

function entry(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: encoder.encode(data) };
}

/** Storage for a cluster of `voters` that already holds the given entries (terms by index from 1). */
function storageWith(voters: NodeId[], terms: number[] = [], hardTerm = terms[terms.length - 1] ?? 0): MemoryStorage {
  const storage = MemoryStorage.bootstrap({ voters, learners: [] });
  storage.append(terms.map((term, i) => entry(i + 1, term)));
  storage.setHardState({ term: hardTerm, vote: NO_NODE, commit: 0 });
  return storage;
}

function newRaft(id: NodeId, voters: NodeId[], options: Partial<RaftConfig> = {}): Raft {
  return new Raft({
    id,
    electionTick: ELECTION_TICK,
    heartbeatTick: HEARTBEAT_TICK,
    storage: options.storage ?? storageWith(voters),
    random: new SeededRandom(Number(id)),
    ...options,
  });
}

/** Takes the messages the node has produced so far. */
function take(raft: Raft): Message[] {
  const msgs = raft.msgs;
  raft.msgs = [];
  return msgs;
}

function ofType(msgs: Message[], type: MessageType): Message[] {
  return msgs.filter((m) => m.type === type);
}

function hup(raft: Raft): void {
  raft.step(message({ type: 'MsgHup', from: raft.id }));
}

function voteResponse(from: NodeId, to: Raft, granted: boolean): Message {
  return message({ type: 'MsgVoteResp', from, to: to.id, term: to.term, reject: !granted });
}

/** What the application does with a Ready's entries: persist them, which a leader counts as its own acknowledgement. */
function persistAll(raft: Raft): void {
  const unstable = raft.log.unstableEntries();
  const last = unstable[unstable.length - 1];
  if (!last) return;
  (raft.log.storage as MemoryStorage).append(unstable);
  raft.log.stableTo(last.index, last.term);
  raft.onEntriesPersisted();
}

/** Campaigns and collects the votes of every peer: the node becomes leader of the next term (its no-op persisted). */
function electLeader(raft: Raft, peers: NodeId[]): void {
  hup(raft);
  for (const peer of peers) raft.step(voteResponse(peer, raft, true));
  assert.equal(raft.role, 'leader');
  persistAll(raft);
  take(raft);
}

function appendResponse(from: NodeId, to: Raft, index: number): Message {
  return message({ type: 'MsgAppResp', from, to: to.id, term: to.term, index });
}

function logTerms(raft: Raft): number[] {
  return raft.log.allEntriesFrom(1).map((e) => e.term);
}

// -------------------------------------------------------------------------------------------------
// §5.1 Raft basics

test('"When servers start up, they begin as followers." (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  assert.equal(raft.role, 'follower');
  assert.equal(raft.term, 0);
  assert.equal(raft.leader, NO_NODE);
});

test('"If one server\'s current term is smaller than the other\'s, then it updates its current term to the larger value" (§5.1)', () => {
  for (const makeRole of ['follower', 'candidate', 'leader'] as const) {
    const raft = newRaft(1n, [1n, 2n, 3n]);
    if (makeRole === 'candidate') hup(raft);
    if (makeRole === 'leader') electLeader(raft, [2n, 3n]);
    raft.step(message({ type: 'MsgApp', from: 2n, to: 1n, term: 5 }));
    assert.equal(raft.term, 5, `${makeRole} adopts the larger term`);
    assert.equal(raft.leader, 2n, `${makeRole} recognizes the sender of an AppendEntries as leader`);
  }
});

test('"If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state." (§5.1)', () => {
  const candidate = newRaft(1n, [1n, 2n, 3n]);
  hup(candidate);
  candidate.step(message({ type: 'MsgHeartbeat', from: 3n, to: 1n, term: 2 }));
  assert.equal(candidate.role, 'follower');

  const leader = newRaft(1n, [1n, 2n, 3n]);
  electLeader(leader, [2n, 3n]);
  // Even a vote request (not from a leader) with a higher term makes a leader step down.
  leader.step(message({ type: 'MsgVote', from: 2n, to: 1n, term: 2, index: 1, logTerm: 1 }));
  assert.equal(leader.role, 'follower');
  assert.equal(leader.term, 2);
});

test('"If a server receives a request with a stale term number, it rejects the request." (§5.1)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 2], 2) });
  const termBefore = raft.term;
  raft.step(message({ type: 'MsgApp', from: 2n, to: 1n, term: 1, index: 2, logTerm: 2, entries: [entry(3, 1)], commit: 3 }));
  raft.step(message({ type: 'MsgVote', from: 3n, to: 1n, term: 1, index: 9, logTerm: 9 }));
  assert.deepEqual(logTerms(raft), [1, 2], 'the stale AppendEntries appended nothing');
  assert.equal(raft.log.committed, 0, 'nor advanced the commit index');
  assert.equal(raft.vote, NO_NODE, 'the stale RequestVote got no vote');
  assert.equal(raft.term, termBefore);
  assert.equal(raft.leader, NO_NODE);
  assert.equal(ofType(take(raft), 'MsgVoteResp').filter((m) => !m.reject).length, 0);
});

// -------------------------------------------------------------------------------------------------
// §5.2 Leader election

test('"Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all followers" (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  electLeader(raft, [2n, 3n]);
  for (let i = 0; i < HEARTBEAT_TICK; i++) raft.tick();
  const heartbeats = ofType(take(raft), 'MsgHeartbeat');
  assert.deepEqual(heartbeats.map((m) => m.to).sort(), [2n, 3n]);
  for (const m of heartbeats) {
    assert.equal(m.entries.length, 0);
    assert.equal(m.term, raft.term);
  }
});

test('"If a follower receives no communication over a period of time called the election timeout, then it ... begins an election" (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  // The randomized timeout is below 2 * electionTick; heartbeats from a leader keep resetting it.
  for (let i = 0; i < 5 * ELECTION_TICK; i++) {
    raft.step(message({ type: 'MsgHeartbeat', from: 2n, to: 1n, term: 1 }));
    raft.tick();
  }
  assert.equal(raft.role, 'follower', 'a follower that hears from its leader never campaigns');
  for (let i = 0; i < 2 * ELECTION_TICK; i++) raft.tick();
  assert.equal(raft.role, 'candidate', 'silence for an election timeout starts an election');
});

test('"To begin an election, a follower increments its current term and transitions to candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other servers" (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1, 2], 2) });
  hup(raft);
  assert.equal(raft.role, 'candidate');
  assert.equal(raft.term, 3);
  assert.equal(raft.vote, 1n);
  const requests = ofType(take(raft), 'MsgVote');
  assert.deepEqual(requests.map((m) => m.to), [2n, 3n]);
  for (const m of requests) {
    assert.equal(m.term, 3);
    assert.equal(m.index, 3, 'RequestVote carries the index of the last log entry');
    assert.equal(m.logTerm, 2, 'and its term');
  }
});

test('"A candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term." (§5.2)', () => {
  const cases: { size: number; granted: number; rejected: number; role: string }[] = [
    { size: 1, granted: 0, rejected: 0, role: 'leader' },
    { size: 3, granted: 1, rejected: 0, role: 'leader' },
    { size: 3, granted: 0, rejected: 1, role: 'candidate' },
    { size: 3, granted: 0, rejected: 2, role: 'follower' },
    { size: 5, granted: 1, rejected: 0, role: 'candidate' },
    { size: 5, granted: 2, rejected: 0, role: 'leader' },
    { size: 5, granted: 1, rejected: 2, role: 'candidate' },
    { size: 5, granted: 1, rejected: 3, role: 'follower' },
  ];
  for (const { size, granted, rejected, role } of cases) {
    const voters = Array.from({ length: size }, (_, i) => BigInt(i + 1));
    const raft = newRaft(1n, voters);
    hup(raft);
    const peers = voters.slice(1);
    peers.slice(0, granted).forEach((peer) => raft.step(voteResponse(peer, raft, true)));
    peers.slice(granted, granted + rejected).forEach((peer) => raft.step(voteResponse(peer, raft, false)));
    assert.equal(raft.role, role, `${size} voters, ${granted} granted, ${rejected} rejected`);
  }
});

test('a vote counts for the term it was cast in: a grant from an earlier term does not elect a candidate (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  hup(raft); // term 1
  hup(raft); // split vote, term 2
  raft.step(message({ type: 'MsgVoteResp', from: 2n, to: 1n, term: 1 }));
  assert.equal(raft.role, 'candidate');
  raft.step(voteResponse(2n, raft, true));
  assert.equal(raft.role, 'leader');
});

test('"Each server will vote for at most one candidate in a given term, on a first-come-first-served basis" (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  const request = (from: NodeId): Message => message({ type: 'MsgVote', from, to: 1n, term: 1, index: 0, logTerm: 0 });
  raft.step(request(2n));
  raft.step(request(3n));
  raft.step(request(2n)); // a retransmission from the candidate it voted for is granted again
  const answers = ofType(take(raft), 'MsgVoteResp').map((m) => `${m.to}:${m.reject ? 'rejected' : 'granted'}`);
  assert.deepEqual(answers, ['2:granted', '3:rejected', '2:granted']);
  assert.equal(raft.vote, 2n);
});

test('"If the leader\'s term ... is at least as large as the candidate\'s current term, then the candidate recognizes the leader as legitimate and returns to follower state." (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  hup(raft);
  assert.equal(raft.role, 'candidate');
  raft.step(message({ type: 'MsgApp', from: 3n, to: 1n, term: raft.term, index: 0, logTerm: 0 }));
  assert.equal(raft.role, 'follower');
  assert.equal(raft.leader, 3n);
  assert.equal(raft.term, 1);
});

test('"If the term in the RPC is smaller than the candidate\'s current term, then the candidate rejects the RPC and continues in candidate state." (§5.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  hup(raft);
  hup(raft); // term 2
  raft.step(message({ type: 'MsgApp', from: 3n, to: 1n, term: 1, index: 0, logTerm: 0 }));
  assert.equal(raft.role, 'candidate');
  assert.equal(raft.term, 2);
});

test('"When this happens, each candidate will time out and start a new election by incrementing its term" (§5.2, split votes)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  hup(raft);
  assert.equal(raft.term, 1);
  for (let i = 0; i < 2 * ELECTION_TICK; i++) raft.tick();
  assert.equal(raft.role, 'candidate');
  assert.equal(raft.term, 2);
  assert.equal(ofType(take(raft), 'MsgVote').filter((m) => m.term === 2).length, 2);
});

test('"Raft uses randomized election timeouts ... chosen randomly from a fixed interval": here [electionTick, 2 * electionTick) (§5.2)', () => {
  const observed = new Set<number>();
  for (let seed = 1; seed <= 200; seed++) {
    const raft = newRaft(1n, [1n, 2n, 3n], { random: new SeededRandom(seed) });
    let ticks = 0;
    while (raft.role === 'follower' && ticks < 10 * ELECTION_TICK) {
      raft.tick();
      ticks++;
    }
    assert.ok(ticks >= ELECTION_TICK && ticks < 2 * ELECTION_TICK, `seed ${seed}: campaigned after ${ticks} ticks`);
    observed.add(ticks);
  }
  // Randomized, not fixed: (nearly) every value of the interval shows up.
  assert.ok(observed.size >= ELECTION_TICK - 1, `only ${observed.size} distinct timeouts`);
});

// -------------------------------------------------------------------------------------------------
// §5.3 Log replication

test('"Upon election: send initial empty AppendEntries RPCs (heartbeat) to each server" and "each leader commit a blank no-op entry into the log at the start of its term" (Figure 2, §8)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1], 1) });
  hup(raft);
  raft.step(voteResponse(2n, raft, true));
  assert.equal(raft.role, 'leader');
  const lastEntry = raft.log.allEntriesFrom(1).at(-1)!;
  assert.deepEqual({ index: lastEntry.index, term: lastEntry.term, size: lastEntry.data.byteLength }, { index: 3, term: 2, size: 0 });
  const appends = ofType(take(raft), 'MsgApp');
  assert.deepEqual(appends.map((m) => m.to), [2n, 3n]);
  for (const m of appends) assert.deepEqual(m.entries.map((e) => e.index), [3]);
});

test('"The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in parallel to each of the other servers" (§5.3)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  electLeader(raft, [2n, 3n]);
  for (const peer of [2n, 3n]) raft.step(appendResponse(peer, raft, 1));
  take(raft);
  const outcome = raft.propose([{ term: 0, index: 0, type: 'normal', data: encoder.encode('x') }]);
  assert.deepEqual(outcome, { accepted: true });
  assert.deepEqual(logTerms(raft), [1, 1]);
  const appends = ofType(take(raft), 'MsgApp');
  assert.deepEqual(appends.map((m) => m.to), [2n, 3n]);
  for (const m of appends) {
    assert.deepEqual(m.entries.map((e) => [e.index, e.term]), [[2, 1]]);
    assert.deepEqual([m.index, m.logTerm], [1, 1], 'prevLogIndex and prevLogTerm of the preceding entry');
  }
});

test('"A log entry is committed once the leader that created the entry has replicated it on a majority of the servers" (§5.3)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n, 4n, 5n]);
  electLeader(raft, [2n, 3n, 4n, 5n]);
  raft.step(appendResponse(2n, raft, 1));
  assert.equal(raft.log.committed, 0, 'two of five is not a majority');
  take(raft);
  raft.step(appendResponse(3n, raft, 1));
  assert.equal(raft.log.committed, 1, 'three of five is');
  // The leader tells the followers: "it includes that index in future AppendEntries RPCs".
  assert.ok(ofType(take(raft), 'MsgApp').every((m) => m.commit === 1));
});

test('"If AppendEntries fails because of log inconsistency: decrement nextIndex and retry" (Figure 2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1, 1, 1], 1) });
  electLeader(raft, [2n, 3n]);
  assert.equal(raft.progress.get(2n)!.next, 5, 'nextIndex starts just after the leader\'s last entry');
  // The follower has only entry 1; without a hint the leader steps back one entry at a time.
  raft.step(message({ type: 'MsgAppResp', from: 2n, to: 1n, term: raft.term, index: 4, reject: true, rejectHint: 4 }));
  assert.equal(raft.progress.get(2n)!.next, 4);
  const retry = ofType(take(raft), 'MsgApp').find((m) => m.to === 2n)!;
  assert.deepEqual([retry.index, retry.logTerm], [3, 1]);
  assert.deepEqual(retry.entries.map((e) => e.index), [4, 5]);
  // A hint lets it skip directly to the follower's last index (§5.3's optimization).
  raft.step(message({ type: 'MsgAppResp', from: 2n, to: 1n, term: raft.term, index: 3, reject: true, rejectHint: 1 }));
  assert.equal(raft.progress.get(2n)!.next, 2);
  // A rejection of an older probe is stale and ignored.
  raft.step(message({ type: 'MsgAppResp', from: 2n, to: 1n, term: raft.term, index: 4, reject: true, rejectHint: 0 }));
  assert.equal(raft.progress.get(2n)!.next, 2);
});

test('"Reply false if log doesn\'t contain an entry at prevLogIndex whose term matches prevLogTerm" (Figure 2, AppendEntries)', () => {
  const raft = newRaft(2n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1, 2], 2) });
  const cases = [
    { index: 3, logTerm: 3, reject: true, hint: 3 }, // our entry 3 has term 2
    { index: 5, logTerm: 3, reject: true, hint: 3 }, // we have no entry 5; the hint is our last index
    { index: 3, logTerm: 2, reject: false, hint: 0 },
  ];
  for (const { index, logTerm, reject, hint } of cases) {
    raft.step(message({ type: 'MsgApp', from: 1n, to: 2n, term: 3, index, logTerm, entries: [entry(index + 1, 3)] }));
    const [response] = ofType(take(raft), 'MsgAppResp');
    assert.ok(response);
    assert.equal(response.reject, reject, `prev ${logTerm}/${index}`);
    if (reject) {
      assert.equal(response.rejectHint, hint);
      assert.equal(response.logTerm, 2, 'with the term of the hinted entry, for fast backtracking');
    }
  }
});

test('"If an existing entry conflicts with a new one (same index but different terms), delete the existing entry and all that follow it" (Figure 2, AppendEntries)', () => {
  const raft = newRaft(2n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1, 1, 1], 1) });
  raft.step(message({ type: 'MsgApp', from: 1n, to: 2n, term: 2, index: 2, logTerm: 1, entries: [entry(3, 2)] }));
  assert.deepEqual(logTerms(raft), [1, 1, 2], 'entries 3 and 4 of term 1 are gone');
  const [response] = ofType(take(raft), 'MsgAppResp');
  assert.deepEqual([response?.reject, response?.index], [false, 3]);
});

test('"Append any new entries not already in the log" and "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new entry)" (Figure 2)', () => {
  const raft = newRaft(2n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1], 1) });
  // Entries 1-2 are already there; 3 is new. The leader's commit index 5 is beyond what we have.
  raft.step(message({ type: 'MsgApp', from: 1n, to: 2n, term: 1, index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1), entry(3, 1)], commit: 5 }));
  assert.deepEqual(logTerms(raft), [1, 1, 1]);
  assert.equal(raft.log.committed, 3);
  // A delayed, shorter copy of an old AppendEntries does not truncate what followed it.
  raft.step(message({ type: 'MsgApp', from: 1n, to: 2n, term: 1, index: 0, logTerm: 0, entries: [entry(1, 1)], commit: 1 }));
  assert.deepEqual(logTerms(raft), [1, 1, 1]);
  assert.equal(raft.log.committed, 3, 'and commit never goes back');
});

test('"the leader never overwrites or deletes entries in its own log" (Leader Append-Only, Figure 3)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 1], 1) });
  electLeader(raft, [2n, 3n]);
  raft.propose([{ term: 0, index: 0, type: 'normal', data: encoder.encode('x') }]);
  const before = logTerms(raft);
  // An AppendEntries from a deposed leader of an earlier term, with a conflicting suffix.
  raft.step(message({ type: 'MsgApp', from: 3n, to: 1n, term: 1, index: 1, logTerm: 1, entries: [entry(2, 1), entry(3, 1), entry(4, 1), entry(5, 1)], commit: 5 }));
  assert.equal(raft.role, 'leader');
  assert.deepEqual(logTerms(raft), before);
  // Rejections and acknowledgements from followers never shorten it either.
  raft.step(message({ type: 'MsgAppResp', from: 2n, to: 1n, term: raft.term, index: 4, reject: true, rejectHint: 0 }));
  raft.step(appendResponse(3n, raft, 4));
  assert.deepEqual(logTerms(raft), before);
});

test('"Once a follower learns that a log entry is committed, it applies the entry to its state machine (in log order)." (§5.3)', () => {
  const storage = storageWith([1n, 2n, 3n]);
  const node = new RaftNode({ id: 2n, electionTick: ELECTION_TICK, heartbeatTick: HEARTBEAT_TICK, storage, random: new SeededRandom(2) });
  node.step(message({ type: 'MsgApp', from: 1n, to: 2n, term: 1, index: 0, logTerm: 0, entries: [entry(1, 1, 'a'), entry(2, 1, 'b'), entry(3, 1, 'c')], commit: 0 }));
  let ready = node.ready();
  assert.equal(ready.committedEntries.length, 0, 'nothing is applied before it is known to be committed');
  storage.append(ready.entries);
  node.advance();
  node.step(message({ type: 'MsgHeartbeat', from: 1n, to: 2n, term: 1, commit: 2 }));
  ready = node.ready();
  assert.deepEqual(ready.committedEntries.map((e) => new TextDecoder().decode(e.data)), ['a', 'b']);
  node.advance();
  node.step(message({ type: 'MsgApp', from: 1n, to: 2n, term: 1, index: 3, logTerm: 1, commit: 3 }));
  ready = node.ready();
  assert.deepEqual(ready.committedEntries.map((e) => e.index), [3]);
});

// -------------------------------------------------------------------------------------------------
// §5.4 Safety

test('"If the logs have last entries with different terms, then the log with the later term is more up-to-date. If the logs end with the same term, then whichever log is longer is more up-to-date." (§5.4.1)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 2, 2], 2) });
  const cases: [lastIndex: number, lastTerm: number, upToDate: boolean][] = [
    [2, 3, true], // later term wins even if shorter
    [9, 1, false], // earlier term loses even if longer
    [4, 2, true], // same term, longer
    [3, 2, true], // same term, same length
    [2, 2, false], // same term, shorter
  ];
  for (const [lastIndex, lastTerm, upToDate] of cases) {
    assert.equal(raft.log.isUpToDate(lastIndex, lastTerm), upToDate, `candidate log ${lastTerm}/${lastIndex}`);
  }
});

test('"the voter denies its vote if its own log is more up-to-date than that of the candidate" (§5.4.1)', () => {
  const cases: [lastIndex: number, lastTerm: number, granted: boolean][] = [
    [3, 2, true],
    [2, 2, false],
    [9, 1, false],
    [1, 3, true],
  ];
  for (const [lastIndex, lastTerm, granted] of cases) {
    const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 2, 2], 2) });
    raft.step(message({ type: 'MsgVote', from: 2n, to: 1n, term: 5, index: lastIndex, logTerm: lastTerm }));
    const [response] = ofType(take(raft), 'MsgVoteResp');
    assert.equal(response?.reject, !granted, `candidate log ${lastTerm}/${lastIndex}`);
    assert.equal(raft.vote, granted ? 2n : NO_NODE);
  }
});

test('"the leader may even commit an entry before it has been written to its own disk, if a majority of followers have written it" — and not sooner (thesis §10.2.1)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  hup(raft);
  for (const peer of [2n, 3n]) raft.step(voteResponse(peer, raft, true));
  take(raft);
  raft.step(appendResponse(2n, raft, 1));
  assert.equal(raft.log.committed, 0, 'one follower plus a leader copy not yet on disk is not a majority on disk');
  take(raft);
  persistAll(raft);
  assert.equal(raft.log.committed, 1, 'once the leader persisted it, leader and follower make a majority');
  const told = ofType(take(raft), 'MsgApp').filter((m) => m.commit === 1).map((m) => m.to);
  assert.ok(told.includes(2n), 'and the followers learn the new commit index');
  const other = newRaft(1n, [1n, 2n, 3n]);
  hup(other);
  for (const peer of [2n, 3n]) other.step(voteResponse(peer, other, true));
  other.step(appendResponse(2n, other, 1));
  other.step(appendResponse(3n, other, 1));
  assert.equal(other.log.committed, 1, 'two followers on disk are a majority without the leader');
});

test('"Raft never commits log entries from previous terms by counting replicas. Only log entries from the leader\'s current term are committed by counting replicas" (§5.4.2)', () => {
  // The leader has entries 1 (term 1) and 2 (term 2) from earlier terms; it wins term 3.
  const raft = newRaft(1n, [1n, 2n, 3n], { storage: storageWith([1n, 2n, 3n], [1, 2], 2) });
  electLeader(raft, [2n, 3n]);
  assert.deepEqual(logTerms(raft), [1, 2, 3]);
  raft.step(appendResponse(2n, raft, 2));
  assert.equal(raft.log.committed, 0, 'entry 2 (term 2) is on a majority, but is not committed by counting');
  raft.step(appendResponse(2n, raft, 3));
  assert.equal(raft.log.committed, 3, 'the current-term entry 3 commits, and entries 1-2 with it');
});

// -------------------------------------------------------------------------------------------------
// Persistence and the Ready contract (Figure 2: "Updated on stable storage before responding to RPCs")

test('"Persistent state on all servers (Updated on stable storage before responding to RPCs)": a vote is in the same Ready as its response, which must be synced (Figure 2)', () => {
  const node = new RaftNode({
    id: 2n, electionTick: ELECTION_TICK, heartbeatTick: HEARTBEAT_TICK, storage: storageWith([1n, 2n, 3n]), random: new SeededRandom(2),
  });
  node.step(message({ type: 'MsgVote', from: 1n, to: 2n, term: 4, index: 0, logTerm: 0 }));
  const ready = node.ready();
  assert.deepEqual(ready.hardState, { term: 4, vote: 1n, commit: 0 });
  assert.equal(ready.mustSync, true);
  assert.deepEqual(ready.messages.map((m) => `${m.type}:${m.reject}`), ['MsgVoteResp:false']);
  node.advance();
  assert.equal(node.hasReady(), false);
});

// -------------------------------------------------------------------------------------------------
// Thesis extensions: CheckQuorum, disruptive servers, PreVote, leadership transfer

test('"a leader in Raft steps down if an election timeout elapses without a successful round of heartbeats to a majority of its cluster" (thesis §6.2)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { checkQuorum: true });
  electLeader(raft, [2n, 3n]);
  // One follower answers within each election timeout: with the leader, a majority.
  for (let round = 0; round < 3; round++) {
    raft.step(message({ type: 'MsgHeartbeatResp', from: 2n, to: 1n, term: raft.term }));
    for (let i = 0; i < ELECTION_TICK; i++) raft.tick();
    assert.equal(raft.role, 'leader', `round ${round}`);
  }
  for (let i = 0; i < ELECTION_TICK; i++) raft.tick();
  assert.equal(raft.role, 'follower');
  assert.equal(raft.term, 1, 'stepping down does not change the term');
});

test('"if a server receives a RequestVote request within the minimum election timeout of hearing from a current leader, it does not update its term or grant its vote" (thesis §4.2.3)', () => {
  const raft = newRaft(2n, [1n, 2n, 3n], { checkQuorum: true });
  raft.step(message({ type: 'MsgHeartbeat', from: 1n, to: 2n, term: 1 }));
  const request = message({ type: 'MsgVote', from: 3n, to: 2n, term: 2, index: 0, logTerm: 0 });
  raft.step(request);
  assert.deepEqual([raft.term, raft.vote, raft.leader], [1, NO_NODE, 1n]);
  assert.equal(ofType(take(raft), 'MsgVoteResp').length, 0, 'the request is ignored, not even rejected');
  for (let i = 0; i < ELECTION_TICK; i++) raft.tick();
  raft.step(request);
  assert.deepEqual([raft.term, raft.vote], [2, 3n], 'after an election timeout without the leader, it votes');
});

test('"a candidate only increments its term if it first learns from a majority of the cluster that they would be willing to grant the candidate their votes" (thesis §9.6)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n], { preVote: true, storage: storageWith([1n, 2n, 3n], [1], 1) });
  hup(raft);
  assert.deepEqual([raft.role, raft.term, raft.vote], ['preCandidate', 1, NO_NODE]);
  const preVotes = ofType(take(raft), 'MsgPreVote');
  assert.deepEqual(preVotes.map((m) => [m.to, m.term]), [[2n, 2], [3n, 2]], 'pre-votes ask about the next term');
  raft.step(message({ type: 'MsgPreVoteResp', from: 2n, to: 1n, term: 1, reject: true }));
  raft.step(message({ type: 'MsgPreVoteResp', from: 3n, to: 1n, term: 1, reject: true }));
  assert.deepEqual([raft.role, raft.term], ['follower', 1], 'rejected: the term never moved');

  hup(raft);
  raft.step(message({ type: 'MsgPreVoteResp', from: 2n, to: 1n, term: 2 }));
  assert.deepEqual([raft.role, raft.term, raft.vote], ['candidate', 2, 1n], 'granted by a majority: a real election');
});

test('a server answering a pre-vote changes neither its term nor its vote (thesis §9.6)', () => {
  const raft = newRaft(2n, [1n, 2n, 3n], { preVote: true, storage: storageWith([1n, 2n, 3n], [1], 1) });
  raft.step(message({ type: 'MsgPreVote', from: 1n, to: 2n, term: 2, index: 1, logTerm: 1 }));
  const [response] = ofType(take(raft), 'MsgPreVoteResp');
  assert.deepEqual([response?.reject, response?.term], [false, 2]);
  assert.deepEqual([raft.term, raft.vote], [1, NO_NODE]);
});

test('"The prior leader stops accepting new client requests" and then "sends a TimeoutNow request to the target server", which "starts a new election" (thesis §3.10)', () => {
  const leader = newRaft(1n, [1n, 2n, 3n]);
  electLeader(leader, [2n, 3n]);
  leader.step(appendResponse(2n, leader, 1));
  take(leader);
  leader.step(message({ type: 'MsgTransferLeader', from: 2n, to: 1n }));
  assert.equal(leader.leadTransferee, 2n);
  const [timeoutNow] = ofType(take(leader), 'MsgTimeoutNow');
  assert.equal(timeoutNow?.to, 2n, 'the target is up to date, so TimeoutNow goes out at once');
  const lastIndex = leader.log.lastIndex();
  const outcome = leader.propose([{ term: 0, index: 0, type: 'normal', data: encoder.encode('local') }]);
  assert.equal(outcome.accepted, false);
  // A proposal forwarded by a follower is dropped too.
  leader.step(message({ type: 'MsgProp', from: 3n, to: 1n, entries: [{ term: 0, index: 0, type: 'normal', data: encoder.encode('forwarded') }] }));
  assert.equal(leader.log.lastIndex(), lastIndex);

  // The target campaigns at once, skipping PreVote, and its request overrides the voters' lease.
  const target = newRaft(2n, [1n, 2n, 3n], { preVote: true, checkQuorum: true });
  target.step(message({ type: 'MsgHeartbeat', from: 1n, to: 2n, term: 1 }));
  target.step(message({ ...timeoutNow, term: 1 }));
  assert.deepEqual([target.role, target.term], ['candidate', 2]);
  const [request] = ofType(take(target), 'MsgVote');
  assert.ok(request);
  const voter = newRaft(3n, [1n, 2n, 3n], { preVote: true, checkQuorum: true });
  voter.step(message({ type: 'MsgHeartbeat', from: 1n, to: 3n, term: 1 }));
  voter.step(request);
  assert.deepEqual([voter.term, voter.vote], [2, 2n]);
});

test('a leadership transfer that does not complete within an election timeout is aborted, and "the prior leader ... resumes accepting client requests" (thesis §3.10)', () => {
  const leader = newRaft(1n, [1n, 2n, 3n]);
  electLeader(leader, [2n, 3n]);
  leader.step(message({ type: 'MsgTransferLeader', from: 3n, to: 1n }));
  assert.equal(leader.leadTransferee, 3n);
  for (let i = 0; i < ELECTION_TICK; i++) leader.tick();
  assert.equal(leader.leadTransferee, NO_NODE);
  assert.deepEqual(leader.propose([{ term: 0, index: 0, type: 'normal', data: encoder.encode('x') }]), { accepted: true });
});

test('"The leader can only process a read-only query once it has committed an entry of its current term" and confirmed "it hasn\'t been superseded" with a majority of heartbeats (thesis §6.4)', () => {
  const raft = newRaft(1n, [1n, 2n, 3n]);
  electLeader(raft, [2n, 3n]);
  const context = encoder.encode('read-1');
  raft.step(message({ type: 'MsgReadIndex', from: 1n, context }));
  assert.equal(ofType(take(raft), 'MsgHeartbeat').length, 0, 'deferred: the no-op of term 1 is not committed yet');
  raft.step(appendResponse(2n, raft, 1));
  const heartbeats = ofType(take(raft), 'MsgHeartbeat').filter((m) => m.context.byteLength > 0);
  assert.deepEqual(heartbeats.map((m) => m.to), [2n, 3n]);
  assert.equal(raft.readStates.length, 0, 'no answer before a majority acknowledged the heartbeat');
  raft.step(message({ type: 'MsgHeartbeatResp', from: 3n, to: 1n, term: raft.term, context }));
  assert.deepEqual(raft.readStates.map((r) => r.index), [1]);
});

describe('membership change proposals that make no sense are refused with a reason', () => {
  test('adding an existing voter, demoting a voter in one step, removing a stranger or the last voter', () => {
    const storage = MemoryStorage.bootstrap({ voters: [1n], learners: [] });
    const single = new RaftNode({ id: 1n, electionTick: 10, heartbeatTick: 1, random: new SeededRandom(1), storage });
    single.campaign();
    assert.equal(single.isLeader(), true);
    while (single.hasReady()) {
      const ready = single.ready();
      storage.append(ready.entries); // persist, so the leader's no-op is applied on advance
      single.advance();
    }
    const context = new Uint8Array(0);
    assert.match(refusal(single.proposeConfChange({ type: 'addNode', nodeId: 1n, context })), /already a voter/);
    assert.match(refusal(single.proposeConfChange({ type: 'addLearner', nodeId: 1n, context })), /remove it first/);
    assert.match(refusal(single.proposeConfChange({ type: 'removeNode', nodeId: 9n, context })), /not in the cluster/);
    assert.match(refusal(single.proposeConfChange({ type: 'removeNode', nodeId: 1n, context })), /last voter/);
  });

  test('a second change while one is pending is refused, not silently turned into a no-op', () => {
    const storage = MemoryStorage.bootstrap({ voters: [1n], learners: [] });
    const node = new RaftNode({ id: 1n, electionTick: 10, heartbeatTick: 1, random: new SeededRandom(1), storage });
    node.campaign();
    const drain = () => {
      while (node.hasReady()) {
        const ready = node.ready();
        storage.append(ready.entries);
        if (ready.hardState) storage.setHardState(ready.hardState);
        node.advance();
      }
    };
    drain(); // applies the leader's no-op
    const context = new Uint8Array(0);
    assert.equal(node.proposeConfChange({ type: 'addLearner', nodeId: 2n, context }).accepted, true);
    assert.match(refusal(node.proposeConfChange({ type: 'addLearner', nodeId: 3n, context })), /another membership change is in progress/);
  });
});

function refusal(outcome: { accepted: boolean; reason?: string }): string {
  assert.equal(outcome.accepted, false);
  return outcome.reason ?? '';
}
