// RaftNode.takeEarlyMessages: which messages may leave before the outstanding Ready is persisted.
// A member waiting for an fsync must still forward proposals and, as leader, send its appends
// (Raft thesis §10.2.1); everything that promises durable state (votes, append acknowledgements)
// must wait for its Ready. Three RaftNodes are driven by hand with MemoryStorage as their disk.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode } from '../../src/consensus/raft-node.ts';
import { MemoryStorage } from '../../src/consensus/storage.ts';
import type { Message, NodeId, Ready } from '../../src/consensus/types.ts';
import { message } from '../../src/consensus/types.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';

const VOTERS: NodeId[] = [1n, 2n, 3n];
const encoder = new TextEncoder();

function newNode(id: NodeId): RaftNode {
  return new RaftNode({
    id, electionTick: 10, heartbeatTick: 1, storage: MemoryStorage.bootstrap({ voters: VOTERS, learners: [] }),
    random: new SeededRandom(Number(id)), preVote: true, checkQuorum: true,
  });
}

/** What the server does once a Ready's write completed: the stable log learns it, then advance. */
function persist(node: RaftNode, ready: Ready): void {
  const storage = node.raft.log.storage as MemoryStorage;
  storage.append(ready.entries);
  if (ready.hardState) storage.setHardState(ready.hardState);
  node.advance();
}

/** Delivers messages until no node has anything left (every Ready persisted at once). */
function stabilize(nodes: Map<NodeId, RaftNode>): void {
  for (let progress = true; progress;) {
    progress = false;
    for (const node of nodes.values()) {
      if (!node.hasReady()) continue;
      progress = true;
      const ready = node.ready();
      persist(node, ready);
      for (const m of ready.messages) nodes.get(m.to)?.step(m);
    }
  }
}

function cluster(): Map<NodeId, RaftNode> {
  const nodes = new Map(VOTERS.map((id) => [id, newNode(id)]));
  nodes.get(1n)!.campaign();
  stabilize(nodes);
  assert.equal(nodes.get(1n)!.isLeader(), true);
  return nodes;
}

function types(messages: Message[]): string[] {
  return messages.map((m) => `${m.type} ${m.from}->${m.to}`).sort();
}

test('a leader waiting for its own write sends the appends of new proposals at once (thesis §10.2.1)', () => {
  const nodes = cluster();
  const leader = nodes.get(1n)!;
  leader.propose(encoder.encode('a'));
  const outstanding = leader.ready(); // being written: not advanced yet
  assert.deepEqual(outstanding.entries.map((e) => new TextDecoder().decode(e.data)), ['a']);
  leader.propose(encoder.encode('b'));
  const early = leader.takeEarlyMessages();
  assert.deepEqual(types(early), ['MsgApp 1->2', 'MsgApp 1->3']);
  assert.deepEqual(early.map((m) => m.entries.map((e) => new TextDecoder().decode(e.data))), [['b'], ['b']]);
  assert.equal(leader.takeEarlyMessages().length, 0, 'taken messages leave the mailbox');
  // The outstanding Ready's own appends (of 'a') go first, as the server sends them; then 'b'.
  for (const m of [...outstanding.messages, ...early]) nodes.get(m.to)!.step(m);
  persist(leader, outstanding);
  stabilize(nodes);
  for (const node of nodes.values()) assert.equal(node.raft.log.committed, leader.raft.log.lastIndex(), `member ${node.raft.id} committed both`);
});

test('a leader whose own entries are unpersisted does not count them: it commits with a majority of disks only', () => {
  const nodes = cluster();
  const leader = nodes.get(1n)!;
  const committed = leader.raft.log.committed;
  leader.propose(encoder.encode('a'));
  const early = leader.takeEarlyMessages();
  assert.deepEqual(types(early), ['MsgApp 1->2', 'MsgApp 1->3']);
  const follower = nodes.get(2n)!;
  follower.step(early.find((m) => m.to === 2n)!);
  const followerReady = follower.ready();
  persist(follower, followerReady);
  for (const m of followerReady.messages) leader.step(m);
  // Only follower 2 has 'a' on disk: one of three is no majority.
  assert.equal(leader.raft.log.committed, committed, 'not committed while only one disk holds it');
  persist(leader, leader.ready());
  assert.equal(leader.raft.log.committed, committed + 1, 'committed once the leader persisted its own copy');
});

test('a follower forwards proposals and read-index requests at once, but its acknowledgements wait for its write', () => {
  const nodes = cluster();
  const leader = nodes.get(1n)!;
  const follower = nodes.get(2n)!;
  leader.propose(encoder.encode('a'));
  for (const m of leader.takeEarlyMessages().filter((m) => m.to === 2n)) follower.step(m);
  const outstanding = follower.ready(); // writing 'a'
  assert.deepEqual(types(outstanding.messages), ['MsgAppResp 2->1'], 'the acknowledgement belongs to the write');
  // While the write is in flight, a client's proposal and a read arrive here.
  leader.propose(encoder.encode('b'));
  for (const m of leader.takeEarlyMessages().filter((m) => m.to === 2n)) follower.step(m);
  follower.propose(encoder.encode('c'));
  follower.readIndex(encoder.encode('read-1'));
  const early = follower.takeEarlyMessages();
  assert.deepEqual(types(early), ['MsgProp 2->1', 'MsgReadIndex 2->1']);
  assert.equal(follower.takeEarlyMessages().length, 0);
  persist(follower, outstanding);
  const next = follower.ready();
  assert.deepEqual(types(next.messages), ['MsgAppResp 2->1'], "the acknowledgement of 'b' waits for the next write");
});

test('votes and vote answers are never sent early: they promise a durable term and vote', () => {
  const nodes = new Map(VOTERS.map((id) => [id, newNode(id)]));
  const candidate = nodes.get(1n)!;
  candidate.campaign(); // PreVote first
  assert.equal(candidate.takeEarlyMessages().length, 0);
  const preVote = candidate.ready();
  persist(candidate, preVote);
  const voter = nodes.get(2n)!;
  for (const m of preVote.messages.filter((m) => m.to === 2n)) voter.step(m);
  assert.equal(voter.takeEarlyMessages().length, 0, 'a pre-vote answer waits for its Ready');
});

test('a single voter that elects itself sends no early appends to its learner until its new term is on disk', () => {
  const storage = MemoryStorage.bootstrap({ voters: [1n], learners: [2n] });
  const leader = new RaftNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: new SeededRandom(1) });
  leader.campaign();
  assert.equal(leader.isLeader(), true);
  leader.propose(encoder.encode('a'));
  assert.equal(leader.takeEarlyMessages().length, 0, 'term 1 is not persisted yet: a crash could let it lead term 1 twice');
  const ready = leader.ready();
  assert.equal(ready.hardState?.term, 1);
  assert.deepEqual(types(ready.messages), ['MsgApp 1->2'], 'the append goes with the Ready that persists the term');
  persist(leader, ready);
  const learner = new RaftNode({
    id: 2n, electionTick: 10, heartbeatTick: 1, storage: MemoryStorage.bootstrap({ voters: [1n], learners: [2n] }), random: new SeededRandom(2),
  });
  const nodes = new Map([[1n, leader], [2n, learner]]);
  for (const m of ready.messages) learner.step(m);
  stabilize(nodes);
  leader.propose(encoder.encode('b'));
  assert.deepEqual(types(leader.takeEarlyMessages()), ['MsgApp 1->2']);
});

test('a follower answers a batch of appends with one acknowledgement, the highest; rejections are left alone', () => {
  const nodes = cluster();
  const leader = nodes.get(1n)!;
  const follower = nodes.get(2n)!;
  for (const text of ['a', 'b', 'c']) {
    leader.propose(encoder.encode(text));
    for (const m of leader.takeEarlyMessages().filter((m) => m.to === 2n)) follower.step(m);
  }
  const ready = follower.ready();
  assert.deepEqual(ready.messages.map((m) => `${m.type} ${m.index}`), [`MsgAppResp ${leader.raft.log.lastIndex()}`]);
  persist(follower, ready);

  // An append the follower cannot place (a gap) is rejected: its answers stay as they are.
  const last = leader.raft.log.lastIndex();
  const term = leader.raft.term;
  follower.step(message({ type: 'MsgApp', from: 1n, to: 2n, term, index: last + 5, logTerm: term }));
  follower.step(message({ type: 'MsgApp', from: 1n, to: 2n, term, index: last, logTerm: term }));
  follower.step(message({ type: 'MsgApp', from: 1n, to: 2n, term, index: last, logTerm: term }));
  const answers = follower.ready().messages.filter((m) => m.type === 'MsgAppResp');
  assert.deepEqual(answers.map((m) => m.reject), [true, false, false], 'with a rejection among them, every answer reaches the leader');
});
