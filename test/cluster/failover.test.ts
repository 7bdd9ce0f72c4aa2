// Failover with real processes on loopback: the leader killed with SIGKILL under write load, a
// partitioned leader, a partitioned follower, the leader stopped with SIGTERM (a planned restart).
// Timeouts in these tests are bounds derived from the configured election timeout, with generous
// slack for a busy machine.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { KvClient } from '../../src/chaos/kv-client.ts';
import { ProcessCluster } from '../../src/chaos/process-cluster.ts';

const ELECTION_TIMEOUT_MS = 1_000;
const HEARTBEAT_MS = 100;
/** A new leader must appear well within this (an election needs one to two election timeouts). */
const ELECTION_BOUND_MS = 10 * ELECTION_TIMEOUT_MS;

interface Harness {
  cluster: ProcessCluster;
  clients: Map<string, KvClient>;
  workDir: string;
}

async function startCluster(electionTimeoutMs = ELECTION_TIMEOUT_MS, extraArgs: string[] = []): Promise<Harness> {
  const workDir = mkdtempSync(join(tmpdir(), 'concord-failover-'));
  const cluster = await ProcessCluster.create({ size: 3, workDir, heartbeatIntervalMs: HEARTBEAT_MS, electionTimeoutMs, extraArgs });
  cluster.startAll();
  const clients = new Map(cluster.names.map((name) => [name, new KvClient(cluster.clientEndpoint(name))]));
  await leaderAmong({ cluster, clients, workDir }, cluster.names, 30_000);
  return { cluster, clients, workDir };
}

async function stopCluster(harness: Harness): Promise<void> {
  for (const client of harness.clients.values()) client.close();
  await harness.cluster.stopAll();
  rmSync(harness.workDir, { recursive: true, force: true });
}

/** The member among `names` that they agree leads, with its term; waits up to timeoutMs. */
async function leaderAmong(harness: Harness, names: string[], timeoutMs = ELECTION_BOUND_MS): Promise<{ name: string; term: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = await Promise.all(names.map(async (name) => {
      try {
        return { name, ...(await harness.clients.get(name)!.status(500)) };
      } catch {
        return undefined;
      }
    }));
    const leader = statuses.find((status) => status && status.leader === status.memberId);
    const agreed = leader && statuses.every((status) => status && status.leader === leader.memberId);
    if (leader && agreed) return { name: leader.name, term: leader.term };
    if (Date.now() > deadline) assert.fail(`no leader agreed among ${names.join(', ')} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('kill -9 of the leader under write load: a new leader, writes go on through the etcd3 client, nothing acknowledged is lost', async (t) => {
  const harness = await startCluster();
  const client = new Etcd3({ hosts: harness.cluster.endpoints().map((endpoint) => `http://${endpoint}`), dialTimeout: 1_000 });
  try {
    const { name: oldLeader } = await leaderAmong(harness, harness.cluster.names);
    const acknowledged: { key: string; at: number }[] = [];
    let stop = false;
    let lastError = '';
    const writer = (async () => {
      for (let i = 0; !stop && i < 100_000; i++) {
        try {
          await client.put(`load/${i}`).value(String(i));
          acknowledged.push({ key: `load/${i}`, at: Date.now() });
        } catch (error) {
          lastError = (error as Error).message; // the client retries through the other members; we go on
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const killedAt = Date.now();
    await harness.cluster.kill(oldLeader);
    const survivors = harness.cluster.names.filter((name) => name !== oldLeader);
    const { name: newLeader } = await leaderAmong(harness, survivors);
    assert.notEqual(newLeader, oldLeader);
    const countAtElection = acknowledged.length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    stop = true;
    await writer;
    assert.ok(acknowledged.length > countAtElection, `writes continue after the failover (last client error: ${lastError})`);
    const firstAfter = acknowledged.find((write) => write.at > killedAt)?.at ?? Date.now();
    const lastBefore = [...acknowledged].reverse().find((write) => write.at <= killedAt)?.at ?? killedAt;
    t.diagnostic(`write unavailability window: ${firstAfter - lastBefore} ms (election timeout ${ELECTION_TIMEOUT_MS} ms)`);
    harness.cluster.start(oldLeader);
    for (const { key } of acknowledged) {
      const value = await client.get(key).string();
      assert.notEqual(value, null, `acknowledged ${key} is there`);
    }
  } finally {
    client.close();
    await stopCluster(harness);
  }
});

test('a partitioned leader steps down and cannot serve linearizable reads; the majority elects a leader; healing keeps it', async () => {
  const harness = await startCluster();
  try {
    const { name: oldLeader } = await leaderAmong(harness, harness.cluster.names);
    const majority = harness.cluster.names.filter((name) => name !== oldLeader);
    harness.cluster.relay.partition([oldLeader], harness.cluster.names);
    const { name: newLeader, term } = await leaderAmong(harness, majority);
    await harness.clients.get(newLeader)!.put('during', 'partition', 2_000);
    // CheckQuorum: the isolated old leader steps down once an election timeout passes without a quorum.
    const isolated = harness.clients.get(oldLeader)!;
    const deadline = Date.now() + ELECTION_BOUND_MS;
    while ((await isolated.status(500)).leader === (await isolated.status(500)).memberId) {
      assert.ok(Date.now() < deadline, 'the isolated leader stepped down');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await assert.rejects(isolated.get('during', 2 * ELECTION_TIMEOUT_MS), 'no linearizable read without a quorum');
    assert.equal((await isolated.get('during', 1_000, { serializable: true })).value, null, 'a serializable read is served, stale');
    harness.cluster.relay.healAll();
    await new Promise((resolve) => setTimeout(resolve, 3 * ELECTION_TIMEOUT_MS));
    const after = await leaderAmong(harness, harness.cluster.names);
    assert.deepEqual(after, { name: newLeader, term }, 'PreVote: the returning member did not disrupt the leader or bump the term');
    assert.equal((await isolated.get('during', 2_000)).value, 'partition', 'the returning member caught up');
  } finally {
    await stopCluster(harness);
  }
});

test('an isolated follower cannot elect itself, and does not disrupt the leader when it returns', async () => {
  const harness = await startCluster();
  try {
    const before = await leaderAmong(harness, harness.cluster.names);
    const follower = harness.cluster.names.find((name) => name !== before.name)!;
    harness.cluster.relay.partition([follower], harness.cluster.names);
    await new Promise((resolve) => setTimeout(resolve, 4 * ELECTION_TIMEOUT_MS));
    const isolated = await harness.clients.get(follower)!.status(1_000);
    assert.notEqual(isolated.leader, isolated.memberId, 'the isolated follower never led');
    assert.equal(isolated.term, before.term, 'PreVote: it never even started an election');
    harness.cluster.relay.healAll();
    await new Promise((resolve) => setTimeout(resolve, 2 * ELECTION_TIMEOUT_MS));
    assert.deepEqual(await leaderAmong(harness, harness.cluster.names), before);
  } finally {
    await stopCluster(harness);
  }
});

test('SIGTERM to the leader: it hands leadership over, so the others have a leader before any election timeout could pass; it rejoins without disruption', async (t) => {
  // A long election timeout: without the hand-over, no follower could even start an election
  // until this long after the leader's last heartbeat, which comes after the SIGTERM.
  const longElectionTimeoutMs = 6_000;
  // The store alone: a member's control plane stops first on SIGTERM (it deregisters while the
  // store still answers), and the leader keeps leading meanwhile; that wait is not the hand-over's.
  const harness = await startCluster(longElectionTimeoutMs, ['--no-control-plane']);
  try {
    const { name: oldLeader, term } = await leaderAmong(harness, harness.cluster.names, 60_000);
    await harness.clients.get(oldLeader)!.put('before', 'stop', 2_000);
    const signalled = Date.now();
    await harness.cluster.stop(oldLeader);
    const survivors = harness.cluster.names.filter((name) => name !== oldLeader);
    const logOf = (name: string) => readFileSync(harness.cluster.member(name).logPath, 'utf8');
    const after = await leaderAmong(harness, survivors, longElectionTimeoutMs).catch((error: Error) => {
      throw new Error(`${error.message} (${Date.now() - signalled} ms after SIGTERM)\n--- ${oldLeader}'s log ---\n${logOf(oldLeader).slice(-4_000)}\n--- ${survivors[0]}'s log ---\n${logOf(survivors[0]!).slice(-2_000)}`);
    });
    const tookMs = Date.now() - signalled;
    t.diagnostic(`a new leader ${tookMs} ms after SIGTERM`);
    assert.ok(tookMs < longElectionTimeoutMs, `a new leader ${tookMs} ms after SIGTERM, within the ${longElectionTimeoutMs} ms election timeout`);
    assert.equal(after.term, term + 1, 'one hand-over election, nothing more');
    const log = logOf(oldLeader);
    assert.match(log, /handed leadership to/);
    assert.match(log, /process exited \(code 0, signal null\)/, 'a clean exit');
    await harness.clients.get(after.name)!.put('after', 'stop', 2_000);
    harness.cluster.start(oldLeader);
    // A linearizable read through the restarted member: it is up, and has caught up with the leader.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const read = await harness.clients.get(oldLeader)!.get('after', 2_000).catch(() => undefined);
      if (read?.value === 'stop') break;
      assert.ok(Date.now() < deadline, `the restarted member serves the write made while it was stopped (last read: ${JSON.stringify(read)})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.deepEqual(await leaderAmong(harness, harness.cluster.names), after, 'its return did not disturb the leader or the term');
  } finally {
    await stopCluster(harness);
  }
});
