// `concord chaos`: a real cluster of Concord processes on loopback under a client workload, while
// faults are injected: SIGKILL and restart of members (the leader among them), a power failure of
// every member at once, SIGSTOP/SIGCONT pauses, and partitions (a minority, the leader alone,
// one-way links) through the peer relay. Then everything is healed and the run is judged:
// * the clients' history is linearizable (the simulator's checker and key-value model);
// * no acknowledged write is missing: each one is read back at the revision it was given;
// * every member holds the same state: HashKV at one revision is equal on all of them.
//
// The fault schedule follows from the seed; process timing does not, so a seed reproduces the
// faults, not the interleaving. A failed run leaves its report, history and member logs behind.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../random/seeded-random.ts';
import { checkHistory } from '../sim/linearizability.ts';
import { kvModel } from '../sim/kv-model.ts';
import type { KvInput, KvOperation, KvOutput } from '../sim/kv-model.ts';
import { KvClient, failedBeforeProposal } from './kv-client.ts';
import { ProcessCluster } from './process-cluster.ts';

export const FAULT_KINDS = ['kill', 'kill-leader', 'power-failure', 'pause', 'partition-minority', 'partition-leader', 'one-way-partition'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  members: 3 | 5;
  durationSeconds: number;
  seed: number;
  /** `concord server --bug` defects to switch on in every member (proving the checks catch them). */
  bugs?: readonly string[];
  /** The fault kinds to inject; default all of FAULT_KINDS. */
  faultKinds?: readonly FaultKind[];
  /** Concurrent workload clients (each has one request outstanding at a time). */
  clients?: number;
  keys?: number;
  heartbeatIntervalMs?: number;
  electionTimeoutMs?: number;
  /** Where data dirs, logs and the report go; a fresh temp folder by default. */
  workDir?: string;
  /** Keep the work dir even when the run passes. */
  keepWorkDir?: boolean;
  onProgress?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  members: number;
  durationSeconds: number;
  bugs: string[];
  ops: number;
  acked: number;
  /** Operations whose outcome the client could not know (timeouts, lost connections). */
  unknown: number;
  lostWrites: number;
  linearizable: boolean;
  /** 'linearizable', 'not-linearizable' or 'unknown' (the checker's search budget ran out). */
  linearizabilityVerdict: string;
  converged: boolean;
  faults: Record<FaultKind, number>;
  leaderChanges: number;
  /** Longest stretch without a successful write while faults ran, in milliseconds. */
  longestWriteGapMs: number;
  problems: string[];
  workDir: string;
  passed: boolean;
  replay: string;
}

export interface AckedWrite {
  key: string;
  value: string;
  revision: number;
}

const CHECKED_KEY_PREFIX = 'chaos/k';
const LEASE_KEY_PREFIX = 'chaos/lease/';

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const random = new SeededRandom(options.seed);
  const electionTimeoutMs = options.electionTimeoutMs ?? 1_000;
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'concord-chaos-'));
  const progress = options.onProgress ?? (() => {});
  const events: string[] = [];
  const started = Date.now();
  const note = (line: string) => {
    const stamped = `${((Date.now() - started) / 1000).toFixed(1)}s ${line}`;
    events.push(stamped);
    progress(stamped);
  };
  const cluster = await ProcessCluster.create({
    size: options.members,
    workDir,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 100,
    electionTimeoutMs,
    extraArgs: (options.bugs ?? []).flatMap((bug) => ['--bug', bug]),
    onEvent: note,
  });
  const clients = new Map(cluster.names.map((name) => [name, new KvClient(cluster.clientEndpoint(name))]));
  const faults = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
  const problems: string[] = [];
  const history: KvOperation[] = [];
  const acked: AckedWrite[] = [];
  const opTimeoutMs = Math.max(2_000, 2 * electionTimeoutMs);
  let leaderChanges = 0;
  let longestWriteGapMs = 0;
  try {
    cluster.startAll();
    await waitForWrites(clients, 30_000);
    note('cluster is up');
    const workload = new Workload({ clients, names: cluster.names, random: new SeededRandom(options.seed + 1), opTimeoutMs, keys: options.keys ?? 4, history, acked });
    const leaderWatch = watchLeader(clients, (changes) => (leaderChanges = changes));
    const runUntil = Date.now() + options.durationSeconds * 1000;
    const clientLoops = Array.from({ length: options.clients ?? 6 }, (_, id) => workload.runClient(id, runUntil));
    const leaseLoop = workload.runLeases(runUntil);
    await injectFaults(cluster, clients, random, runUntil, options.faultKinds ?? FAULT_KINDS, faults, note);
    await Promise.all([...clientLoops, leaseLoop]);
    leaderWatch.stop();
    longestWriteGapMs = workload.longestWriteGapMs();
    note(`workload done: ${history.length} operations`);
    await healEverything(cluster, note);
    const convergence = await checkConvergence(clients, 30_000);
    if (!convergence.converged) problems.push(convergence.problem);
    const lostWrites = await countLostWrites(clients, acked, problems);
    const checked = checkHistory(kvModel, history);
    const failedPartition = checked.partitions.find((partition) => partition.verdict !== 'linearizable');
    if (failedPartition?.explanation) problems.push(`linearizability: ${failedPartition.explanation.slice(0, 4_000)}`);
    const missingKinds = (options.faultKinds ?? FAULT_KINDS).filter((kind) => faults[kind] === 0);
    if (missingKinds.length > 0) note(`fault kinds that did not occur (run longer): ${missingKinds.join(', ')}`);
    const linearizable = checked.verdict === 'linearizable';
    const passed = linearizable && lostWrites === 0 && convergence.converged;
    const report: ChaosReport = {
      seed: options.seed,
      members: options.members,
      durationSeconds: options.durationSeconds,
      bugs: [...(options.bugs ?? [])],
      ops: history.length,
      acked: history.filter((operation) => operation.output !== undefined).length,
      unknown: history.filter((operation) => operation.output === undefined).length,
      lostWrites,
      linearizable,
      linearizabilityVerdict: checked.verdict,
      converged: convergence.converged,
      faults,
      leaderChanges,
      longestWriteGapMs,
      problems,
      workDir,
      passed,
      replay: `npx concord chaos --members ${options.members} --duration ${options.durationSeconds} --seed ${options.seed}` +
        (options.faultKinds ? ` --faults ${options.faultKinds.join(',')}` : '') +
        (options.bugs ?? []).map((bug) => ` --bug ${bug}`).join(''),
    };
    writeFileSync(join(workDir, 'report.json'), `${JSON.stringify({ ...report, events }, null, 2)}\n`);
    writeFileSync(join(workDir, 'history.json'), JSON.stringify(history));
    return report;
  } finally {
    for (const client of clients.values()) client.close();
    await cluster.stopAll();
    if (!options.keepWorkDir && !options.workDir) {
      const report = join(workDir, 'report.json');
      // A passing run leaves nothing behind; a failing one keeps everything for the postmortem.
      try {
        const text = readFileSync(report, 'utf8');
        if ((JSON.parse(text) as { passed: boolean }).passed) rmSync(workDir, { recursive: true, force: true });
      } catch {
        // No report: the run itself failed; keep the logs.
      }
    }
  }
}

// --- the workload ------------------------------------------------------------------------------

export interface WorkloadOptions {
  clients: Map<string, KvClient>;
  names: string[];
  random: SeededRandom;
  opTimeoutMs: number;
  keys: number;
  history: KvOperation[];
  acked: AckedWrite[];
}

export class Workload {
  private readonly options: WorkloadOptions;
  private readonly epochMs = performance.now();
  private lastWriteAtMs = performance.now();
  private longestGapMs = 0;

  constructor(options: WorkloadOptions) {
    this.options = options;
  }

  longestWriteGapMs(): number {
    return Math.round(this.longestGapMs);
  }

  private now(): number {
    return performance.now() - this.epochMs;
  }

  private pickClient(): KvClient {
    const { names, clients, random } = this.options;
    return clients.get(names[random.nextInt(names.length)]!)!;
  }

  /** One client: an operation at a time, on a random key through a random member, until the deadline. */
  async runClient(clientId: number, untilMs: number): Promise<void> {
    const { random, keys } = this.options;
    for (let sequence = 0; Date.now() < untilMs; sequence++) {
      const key = `${CHECKED_KEY_PREFIX}${random.nextInt(keys)}`;
      const value = `c${clientId}-${sequence}`;
      const roll = random.nextInt(10);
      const input: KvInput = roll < 4 ? { kind: 'get', key } : roll < 8 ? { kind: 'put', key, value } : { kind: 'cas', key, expected: this.lastValueSeen(key), value };
      await this.perform(clientId, input);
      await sleep(random.nextInt(15));
    }
  }

  private readonly lastValues = new Map<string, string | null>();

  private lastValueSeen(key: string): string | null {
    return this.lastValues.get(key) ?? null;
  }

  private async perform(clientId: number, input: KvInput): Promise<void> {
    const client = this.pickClient();
    const callTime = this.now();
    const operation: KvOperation = { clientId, input, callTime, returnTime: undefined, output: undefined };
    try {
      const output = await this.execute(client, input);
      operation.returnTime = this.now();
      operation.output = output;
    } catch (error) {
      if (failedBeforeProposal(error)) return; // certainly no effect: not part of the history
      // Unknown outcome: it may have taken effect at any moment after the call, or never.
    }
    this.options.history.push(operation);
  }

  private async execute(client: KvClient, input: KvInput): Promise<KvOutput> {
    const { opTimeoutMs, acked } = this.options;
    switch (input.kind) {
      case 'get': {
        const { value } = await client.get(input.key, opTimeoutMs);
        this.lastValues.set(input.key, value);
        return { kind: 'get', value };
      }
      case 'put': {
        const revision = await client.put(input.key, input.value, opTimeoutMs);
        acked.push({ key: input.key, value: input.value, revision });
        this.wrote();
        return { kind: 'put' };
      }
      case 'cas': {
        const { succeeded, revision } = await client.cas(input.key, input.expected, input.value, opTimeoutMs);
        if (succeeded) {
          acked.push({ key: input.key, value: input.value, revision });
          this.lastValues.set(input.key, input.value);
          this.wrote();
        }
        return { kind: 'cas', succeeded };
      }
    }
  }

  private wrote(): void {
    const now = performance.now();
    this.longestGapMs = Math.max(this.longestGapMs, now - this.lastWriteAtMs);
    this.lastWriteAtMs = now;
  }

  /**
   * Short leases that nobody keeps alive, each with a key: expiry is the leader's decision,
   * replicated as a revoke; members that decided it themselves would diverge.
   */
  async runLeases(untilMs: number): Promise<void> {
    for (let n = 0; Date.now() < untilMs; n++) {
      try {
        const client = this.pickClient();
        const lease = await client.grantLease(1, this.options.opTimeoutMs);
        await client.put(`${LEASE_KEY_PREFIX}${n}`, 'x', this.options.opTimeoutMs, lease);
      } catch {
        // Faults make some fail; the history does not include lease keys.
      }
      await sleep(300);
    }
  }
}

// --- faults --------------------------------------------------------------------------------------

async function injectFaults(
  cluster: ProcessCluster, clients: Map<string, KvClient>, random: SeededRandom, untilMs: number,
  kinds: readonly FaultKind[], faults: Record<FaultKind, number>, note: (line: string) => void,
): Promise<void> {
  // Every kind once, in a seeded order, then seeded picks: a run of the default length sees them all.
  const order = shuffle([...kinds], random);
  await sleep(1_000);
  for (let round = 0; kinds.length > 0 && Date.now() + 6_000 < untilMs; round++) {
    const kind = round < order.length ? order[round]! : kinds[random.nextInt(kinds.length)]!;
    const holdMs = 1_000 + random.nextInt(2_500);
    await injectOne(kind, cluster, clients, random, holdMs, note);
    faults[kind]++;
    await healEverything(cluster, note);
    await sleep(1_500 + random.nextInt(1_500));
  }
}

async function injectOne(
  kind: FaultKind, cluster: ProcessCluster, clients: Map<string, KvClient>, random: SeededRandom, holdMs: number, note: (line: string) => void,
): Promise<void> {
  const names = cluster.names;
  const minority = Math.floor((names.length - 1) / 2);
  const leader = await findLeader(cluster, clients);
  const anyMember = names[random.nextInt(names.length)]!;
  note(`fault ${kind} for ${holdMs} ms (leader: ${leader ?? 'none'})`);
  switch (kind) {
    case 'kill':
      await cluster.kill(anyMember);
      await sleep(holdMs);
      cluster.start(anyMember);
      return;
    case 'kill-leader': {
      const target = leader ?? anyMember;
      await cluster.kill(target);
      await sleep(holdMs);
      cluster.start(target);
      return;
    }
    case 'power-failure':
      // Every member at once, as a power cut: nothing acknowledged may be lost.
      await Promise.all(names.map((name) => cluster.kill(name)));
      await sleep(Math.min(holdMs, 1_500));
      cluster.startAll();
      return;
    case 'pause': {
      const target = random.nextInt(2) === 0 && leader ? leader : anyMember;
      cluster.pause(target);
      await sleep(holdMs);
      cluster.resume(target);
      return;
    }
    case 'partition-minority': {
      const group = shuffle([...names], random).slice(0, Math.max(1, minority));
      cluster.relay.partition(group, names);
      note(`isolated ${group.join(', ')}`);
      await sleep(holdMs);
      return;
    }
    case 'partition-leader': {
      const target = leader ?? anyMember;
      cluster.relay.partition([target], names);
      note(`isolated ${target}`);
      await sleep(holdMs);
      return;
    }
    case 'one-way-partition': {
      const from = leader ?? anyMember;
      const to = names.filter((name) => name !== from)[random.nextInt(names.length - 1)]!;
      cluster.relay.block(from, to);
      note(`blocked ${from} -> ${to}`);
      await sleep(holdMs);
      return;
    }
  }
}

async function healEverything(cluster: ProcessCluster, note: (line: string) => void): Promise<void> {
  cluster.relay.healAll();
  for (const name of cluster.names) {
    if (cluster.isPaused(name)) cluster.resume(name);
    if (!cluster.isRunning(name)) cluster.start(name);
  }
  note('healed');
}

async function findLeader(cluster: ProcessCluster, clients: Map<string, KvClient>): Promise<string | undefined> {
  const statuses = await Promise.all(cluster.names.map(async (name) => {
    if (!cluster.isRunning(name) || cluster.isPaused(name)) return undefined;
    try {
      return { name, status: await clients.get(name)!.status(300) };
    } catch {
      return undefined;
    }
  }));
  for (const entry of statuses) {
    if (entry && entry.status.leader !== 0n && entry.status.leader === entry.status.memberId) return entry.name;
  }
  return undefined;
}

/** Polls every member's view of the leader; counts changes of the leader seen by any member. */
function watchLeader(clients: Map<string, KvClient>, onChange: (changes: number) => void): { stop(): void } {
  let last: bigint | undefined;
  let changes = 0;
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      for (const client of clients.values()) {
        try {
          const { leader } = await client.status(300);
          if (leader === 0n) continue;
          if (last !== undefined && leader !== last) onChange(++changes);
          last = leader;
          break;
        } catch {
          // That member is down or paused: ask the next.
        }
      }
      await sleep(250);
    }
  };
  void loop();
  return { stop: () => (stopped = true) };
}

// --- the checks ----------------------------------------------------------------------------------

export async function waitForWrites(clients: Map<string, KvClient>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const client of clients.values()) {
      try {
        await client.put('chaos/ready', 'yes', 1_000);
        return;
      } catch {
        // Not yet.
      }
    }
    if (Date.now() > deadline) throw new Error(`the cluster accepted no write within ${timeoutMs} ms of starting`);
    await sleep(200);
  }
}

/**
 * Waits until every member has applied the same revision, then compares HashKV at that revision:
 * equal hashes mean equal key-value histories.
 */
async function checkConvergence(clients: Map<string, KvClient>, timeoutMs: number): Promise<{ converged: boolean; problem: string }> {
  const deadline = Date.now() + timeoutMs;
  let problem = '';
  // A write after the heal makes every member's latest revision one the leader has committed.
  await waitForWrites(clients, timeoutMs).catch((error: Error) => (problem = error.message));
  while (Date.now() < deadline) {
    try {
      const revisions = await Promise.all([...clients.values()].map((client) => client.get('chaos/ready', 2_000, { serializable: true })));
      const target = Math.max(...revisions.map((read) => read.revision));
      if (revisions.every((read) => read.revision === target)) {
        const hashes = await Promise.all([...clients].map(async ([name, client]) => ({ name, ...(await client.hashKv(target, 2_000)) })));
        if (hashes.every((entry) => entry.hash === hashes[0]!.hash)) return { converged: true, problem: '' };
        problem = `members differ at revision ${target}: ${hashes.map((entry) => `${entry.name} ${entry.hash}`).join(', ')}`;
        return { converged: false, problem };
      }
      problem = `members have not caught up: revisions ${revisions.map((read) => read.revision).join(', ')}`;
    } catch (error) {
      problem = `a member did not answer: ${(error as Error).message}`;
    }
    await sleep(250);
  }
  return { converged: false, problem };
}

/** Every acknowledged write must be readable at its revision, with that revision as its mod revision. */
export async function countLostWrites(clients: Map<string, KvClient>, acked: readonly AckedWrite[], problems: string[]): Promise<number> {
  const readers = [...clients.values()];
  let lost = 0;
  for (const write of acked) {
    let read: { value: string | null; modRevision: number } | undefined;
    for (const reader of readers) {
      try {
        read = await reader.get(write.key, 2_000, { revision: write.revision });
        break;
      } catch {
        // Try the next member.
      }
    }
    if (read && read.value === write.value && read.modRevision === write.revision) continue;
    lost++;
    if (lost <= 5) {
      problems.push(`acknowledged write lost: ${write.key}=${write.value} at revision ${write.revision}; ` +
        `reading that revision gives ${read ? `${JSON.stringify(read.value)} (mod revision ${read.modRevision})` : 'no answer'}`);
    }
  }
  return lost;
}

function shuffle<T>(items: T[], random: SeededRandom): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
