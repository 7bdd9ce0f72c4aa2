// One seed of the deterministic cluster simulation: N members, a simulated network and disks, a
// client workload, a fault phase, then a liveness phase in which the healed cluster must commit new
// writes. Safety invariants are checked as events happen; the client history is checked for
// linearizability at the end. Same options => same run, event for event.

import type { InjectableBug } from '../consensus/bugs.ts';
import type { RaftConfig } from '../consensus/raft.ts';
import { compareIds } from '../consensus/raft.ts';
import { MemoryStorage } from '../consensus/storage.ts';
import type { Message, NodeId } from '../consensus/types.ts';
import { NO_NODE } from '../consensus/types.ts';
import { SeededRandom } from '../random/seeded-random.ts';
import { FaultScheduler } from './faults.ts';
import type { FaultKind, FaultTarget } from './faults.ts';
import { SafetyChecker } from './invariants.ts';
import type { DurabilityView, Violation } from './invariants.ts';
import { kvModel } from './kv-model.ts';
import { checkHistory } from './linearizability.ts';
import type { Verdict } from './linearizability.ts';
import { SimNetwork } from './network.ts';
import type { DeliveryFailure, NetworkEvents } from './network.ts';
import { SimMember } from './sim-member.ts';
import type { MemberHooks, MemberSettings } from './sim-member.ts';
import type { SimCommand } from './sim-state-machine.ts';
import { Workload } from './workload.ts';
import type { ClusterPort } from './workload.ts';

export interface SimulationOptions {
  seed: number;
  members: number;
  /** Length of the fault phase. */
  ticks: number;
  faults: readonly FaultKind[];
  bugs: readonly InjectableBug[];
  /** The healed cluster must commit a new write, and every member catch up, within this many ticks. */
  livenessTicks?: number;
}

export interface SeedReport {
  seed: number;
  /** Ticks simulated, fault and liveness phases together. */
  ticks: number;
  /** Index of the highest committed entry. */
  commits: number;
  /** Terms in which some member became leader. */
  elections: number;
  operations: number;
  linearizability: Verdict;
  violations: Violation[];
  /** The last events before the end (bounded by MAX_TRACE_LINES), for the trace file. */
  trace: string[];
}

export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 1;
export const DEFAULT_LIVENESS_TICKS = 2_000;
/** Trace lines kept per seed; older lines are dropped first. */
export const MAX_TRACE_LINES = 4_000;
const MAX_READIES_PER_TICK = 16;
/** Independent of the (sometimes tiny) message size, so applying never lags far behind committing. */
const MAX_COMMITTED_SIZE_PER_READY_BYTES = 64 * 1024;

class TraceLog {
  private lines: string[] = [];
  add(tick: number, text: string): void {
    this.lines.push(`t=${tick} ${text}`);
    if (this.lines.length > MAX_TRACE_LINES * 2) this.lines = this.lines.slice(-MAX_TRACE_LINES);
  }
  snapshot(): string[] {
    return this.lines.slice(-MAX_TRACE_LINES);
  }
}

/** Per-seed variation of everything tunable, so that many seeds cover many shapes of cluster. */
function drawShape(random: SeededRandom, faults: ReadonlySet<FaultKind>) {
  return {
    maxSizePerMsgBytes: [150, 150, 400, 1_000, 64_000][random.nextInt(5)]!,
    maxInflightMsgs: [1, 2, 4, 16, 64][random.nextInt(5)]!,
    // Backpressure: a leader refuses proposals beyond this much uncommitted data, so a slow
    // cluster sheds client load instead of building a backlog it cannot drain.
    maxUncommittedEntriesBytes: [2_000, 8_000, 32_000][random.nextInt(3)]!,
    snapshotEveryEntries: 20 + random.nextInt(180),
    keptEntriesAfterSnapshot: random.nextInt(30),
    jitterTicks: faults.has('reorder') ? 1 + random.nextInt(4) : 0,
    dropProbability: faults.has('drop') ? 0.005 + random.nextFloat() * 0.08 : 0,
    duplicateProbability: faults.has('duplicate') ? 0.005 + random.nextFloat() * 0.04 : 0,
    maxDiskLatencyTicks: random.nextInt(4),
    faultStartProbabilityPerTick: 0.002 + random.nextFloat() * 0.008,
    failNewLeaderProbability: random.nextFloat(),
  };
}

export function runSimulation(options: SimulationOptions): SeedReport {
  return new Simulation(options).run();
}

export class Simulation implements FaultTarget, ClusterPort {
  private readonly options: SimulationOptions;
  private readonly random: SeededRandom;
  private readonly members = new Map<NodeId, SimMember>();
  private readonly ids: NodeId[];
  private readonly network: SimNetwork;
  private readonly faults: FaultScheduler;
  private readonly workload: Workload;
  private readonly safety = new SafetyChecker();
  private readonly trace = new TraceLog();
  private readonly leadersSeen = new Set<string>();
  private readonly diskRandom: SeededRandom;
  private readonly maxDiskLatencyTicks: number;
  private now = 0;
  private inFaultPhase = true;

  constructor(options: SimulationOptions) {
    if (!Number.isSafeInteger(options.members) || options.members < 1 || options.members > 9) {
      throw new Error(`members must be between 1 and 9, got ${options.members}`);
    }
    this.options = options;
    this.random = new SeededRandom(options.seed);
    const faultSet = new Set(options.faults);
    const shape = drawShape(this.random, faultSet);
    this.maxDiskLatencyTicks = shape.maxDiskLatencyTicks;
    this.diskRandom = this.random.fork();
    this.network = new SimNetwork({
      minDelayTicks: 1,
      jitterTicks: shape.jitterTicks,
      dropProbability: shape.dropProbability,
      duplicateProbability: shape.duplicateProbability,
      maxInFlightMessages: 10_000,
    }, this.random.fork());
    this.faults = new FaultScheduler(options.faults, this.random.fork(), {
      startProbabilityPerTick: shape.faultStartProbabilityPerTick,
      minDurationTicks: ELECTION_TICKS,
      maxDurationTicks: ELECTION_TICKS * 30,
      failNewLeaderProbability: shape.failNewLeaderProbability,
    });
    this.workload = new Workload({
      clients: 8, keys: 3, requestTimeoutTicks: 3 * ELECTION_TICKS, giveUpAfterTicks: 40 * ELECTION_TICKS, maxRefusalBackoffTicks: 5, maxThinkTicks: 4,
      readFraction: 0.4, casFraction: 0.2,
    }, this.random.fork());
    this.ids = Array.from({ length: options.members }, (_, i) => BigInt(i + 1));
    const bugs = new Set(options.bugs);
    const settings: MemberSettings = {
      snapshotEveryEntries: shape.snapshotEveryEntries,
      keptEntriesAfterSnapshot: shape.keptEntriesAfterSnapshot,
      maxReadiesPerTick: MAX_READIES_PER_TICK,
      sendBeforePersist: bugs.has('send-before-persist'),
    };
    for (const id of this.ids) {
      const raftRandom = this.random.fork();
      const makeConfig = (storage: MemoryStorage, applied: number): RaftConfig => ({
        id, storage, applied, random: raftRandom,
        electionTick: ELECTION_TICKS, heartbeatTick: HEARTBEAT_TICKS,
        preVote: true, checkQuorum: true,
        maxSizePerMsgBytes: shape.maxSizePerMsgBytes,
        maxCommittedSizePerReadyBytes: MAX_COMMITTED_SIZE_PER_READY_BYTES,
        maxInflightMsgs: shape.maxInflightMsgs,
        maxUncommittedEntriesBytes: shape.maxUncommittedEntriesBytes,
        injectedBugs: bugs,
      });
      const disk = MemoryStorage.bootstrap({ voters: this.ids, learners: [] });
      this.members.set(id, new SimMember(id, disk, makeConfig, settings, this.hooks));
    }
    this.trace.add(0, `seed ${options.seed}: ${options.members} members, faults ${options.faults.join(',') || 'none'}` +
      `, bugs ${options.bugs.join(',') || 'none'}, shape ${JSON.stringify(shape)}`);
  }

  // ---------------------------------------------------------------------------------------------
  // The run

  run(): SeedReport {
    for (; this.now < this.options.ticks && !this.failed(); this.now++) {
      this.faults.tick(this.now, this);
      this.step();
    }
    if (!this.failed()) this.runLivenessPhase();
    this.workload.closeHistory();
    const linearizability = this.checkLinearizability();
    return {
      seed: this.options.seed,
      ticks: this.now,
      commits: this.safety.maxCommitted.index,
      elections: this.leadersSeen.size,
      operations: this.workload.history.length,
      linearizability,
      violations: this.safety.violations,
      trace: this.trace.snapshot(),
    };
  }

  private failed(): boolean {
    return this.safety.violations.length > 0;
  }

  private step(): void {
    this.network.deliverDue(this.now, (id) => this.members.get(id)?.alive ?? false, this.networkEvents);
    for (const member of this.liveMembers()) {
      member.tick();
      this.observe(member);
    }
    this.workload.tick(this.now, this);
    for (const member of this.liveMembers()) {
      member.process(this.now, () => this.diskRandom.nextInt(this.maxDiskLatencyTicks + 1));
      this.observe(member);
    }
    this.safety.checkCommittedDurable(this.now, this.durabilityViews());
  }

  /**
   * Heals every fault, then requires progress within a bound: with the load reduced to one client,
   * a write issued after healing must complete; then, with no load at all, every member must apply
   * everything committed.
   */
  private runLivenessPhase(): void {
    this.inFaultPhase = false;
    this.faults.healAll(this);
    this.network.config = { ...this.network.config, dropProbability: 0, duplicateProbability: 0, jitterTicks: 0 };
    this.trace.add(this.now, 'liveness phase: all faults healed');
    this.workload.livenessFromTick = this.now;
    this.workload.limitActiveClients(1);
    const livenessTicks = this.options.livenessTicks ?? DEFAULT_LIVENESS_TICKS;
    const deadline = this.now + livenessTicks;
    let quiesced = false;
    for (; this.now < deadline && !this.failed(); this.now++) {
      this.step();
      if (this.workload.firstWriteCompletedAfter === undefined) continue;
      if (!quiesced) {
        this.workload.limitActiveClients(0);
        quiesced = true;
      }
      if (!this.workload.busy() && this.membersConverged()) return;
    }
    if (this.failed()) return;
    const what = this.workload.firstWriteCompletedAfter === undefined
      ? 'no write completed'
      : `members did not converge (applied: ${this.ids.map((id) => `${id}=${this.members.get(id)!.node.raft.log.applied}`).join(' ')}; committed ${this.safety.maxCommitted.index})`;
    this.safety.report('liveness', this.now, `${what} within ${livenessTicks} ticks after healing`);
  }

  private membersConverged(): boolean {
    const target = this.safety.maxCommitted.index;
    return [...this.members.values()].every((m) => m.node.raft.log.applied >= target);
  }

  private checkLinearizability(): Verdict {
    const result = checkHistory(kvModel, this.workload.history);
    if (result.verdict === 'not-linearizable') {
      const explanation = result.partitions.find((p) => p.verdict === 'not-linearizable')?.explanation ?? '';
      this.safety.report('linearizability', this.now, `client history is not linearizable\n${explanation}`);
    }
    return result.verdict;
  }

  // ---------------------------------------------------------------------------------------------
  // Observation

  /** Everything observable after a member handled an input: its commit index and its role. */
  private observe(member: SimMember): void {
    const log = member.node.raft.log;
    if (this.safety.commitObserved(log.committed, log.termOrUndefined(log.committed))) {
      this.safety.checkCommittedDurable(this.now, this.durabilityViews());
    }
    this.observeLeadership(member);
  }

  private observeLeadership(member: SimMember): void {
    const raft = member.node.raft;
    if (raft.role !== 'leader') return;
    const key = `${raft.term}/${member.id}`;
    if (this.leadersSeen.has(key)) return;
    this.leadersSeen.add(key);
    this.trace.add(this.now, `member ${member.id} is leader of term ${raft.term} (log ends ${raft.log.lastIndex()}/${raft.log.lastTerm()})`);
    this.safety.leaderElected(this.now, member.id, raft.term, (index) => raft.log.termOrUndefined(index), raft.log.lastIndex());
    if (this.inFaultPhase) this.faults.leaderElected(member.id, this.now, this);
  }

  private durabilityViews(): DurabilityView[] {
    return this.ids.map((id) => {
      const member = this.members.get(id)!;
      const log = member.node.raft.log;
      return {
        id,
        disk: member.disk,
        live: member.alive
          ? {
              tip: { lastIndex: log.lastIndex(), lastTerm: log.lastTerm() },
              hasEntry: (index: number, term: number) => {
                const there = log.termOrUndefined(index);
                return there === undefined || there === term; // undefined: compacted, hence committed
              },
            }
          : undefined,
      };
    });
  }

  private readonly hooks: MemberHooks = {
    send: (message: Message) => this.network.send(message, this.now, this.networkEvents),
    persisted: (member, entries) => this.safety.entriesPersisted(this.now, member.id, entries, member.disk),
    applied: (member, entry, command) => {
      this.safety.entryApplied(this.now, member.id, entry);
      if (command?.executed) this.safety.commandExecuted(this.now, member.id, command.clientId, command.sequence, entry.index);
      if (command?.output) this.workload.writeAnswered(command.clientId, command.sequence, command.output, member.id, this.now);
    },
    roleChanged: (member, role, term) => this.trace.add(this.now, `member ${member.id} is ${role} in term ${term}`),
    readServed: (member, requestId, value) => this.workload.readAnswered(requestId, value, member.id, this.now),
  };

  private readonly networkEvents: NetworkEvents = {
    deliver: (message: Message) => {
      const member = this.members.get(message.to)!;
      member.step(message);
      this.observe(member);
      if (message.type === 'MsgSnap') this.liveMember(message.from)?.node.reportSnapshot(message.to, true);
    },
    lost: (message: Message, why: DeliveryFailure) => {
      const sender = this.liveMember(message.from);
      if (!sender) return;
      if (message.type === 'MsgSnap') sender.node.reportSnapshot(message.to, false);
      else if (why === 'partition' || why === 'crashed') sender.node.reportUnreachable(message.to);
    },
  };

  private liveMember(id: NodeId): SimMember | undefined {
    const member = this.members.get(id);
    return member?.alive ? member : undefined;
  }

  private liveMembers(): SimMember[] {
    return this.ids.map((id) => this.members.get(id)!).filter((m) => m.alive);
  }

  // ---------------------------------------------------------------------------------------------
  // FaultTarget and ClusterPort

  memberIds(): readonly NodeId[] {
    return this.ids;
  }

  isAlive(id: NodeId): boolean {
    return this.members.get(id)?.alive ?? false;
  }

  leader(): NodeId | undefined {
    const leaders = this.liveMembers().filter((m) => m.node.raft.role === 'leader');
    leaders.sort((a, b) => b.node.raft.term - a.node.raft.term || compareIds(a.id, b.id));
    return leaders[0]?.id;
  }

  crash(id: NodeId): void {
    this.members.get(id)!.crash();
  }

  restart(id: NodeId): void {
    this.members.get(id)!.restart();
  }

  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    this.network.partition(sideA, sideB);
  }

  blockLink(from: NodeId, to: NodeId): void {
    this.network.blockLink(from, to);
  }

  healPartitions(): void {
    this.network.healPartitions();
  }

  clog(id: NodeId): void {
    this.network.clog(id);
  }

  unclog(id: NodeId): void {
    this.network.unclog(id);
  }

  transferLeadership(from: NodeId, to: NodeId): void {
    this.liveMember(from)?.node.transferLeadership(to);
  }

  note(text: string): void {
    this.trace.add(this.now, text);
  }

  proposeWrite(memberId: NodeId, command: SimCommand): boolean {
    const member = this.liveMember(memberId);
    return member ? member.proposeWrite(command) : false;
  }

  startRead(memberId: NodeId, requestId: string, key: string): boolean {
    const member = this.liveMember(memberId);
    if (!member || member.node.raft.leader === NO_NODE) return false;
    member.startRead(requestId, key);
    return true;
  }

  abandonRead(memberId: NodeId, requestId: string): void {
    this.members.get(memberId)?.forgetRead(requestId);
  }
}
