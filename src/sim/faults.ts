// The fault schedule of a simulation run: which faults are enabled, and a scheduler that starts and
// ends them at random (seeded) moments during the fault phase.

import type { NodeId } from '../consensus/types.ts';
import type { SeededRandom } from '../random/seeded-random.ts';

export const FAULT_KINDS = [
  'drop', // lose a share of messages
  'duplicate', // deliver a share of messages twice
  'reorder', // random extra delay, so messages overtake each other
  'partition', // split the members into two sides
  'asymmetric', // cut some links in one direction only
  'swizzle', // swizzle-clog: clog members one by one, unclog in random order
  'crash', // crash a member (unsynced writes are lost) and restart it later
  'transfer', // ask the leader to hand leadership to another member
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export function parseFaults(list: string): FaultKind[] {
  if (list === 'all') return [...FAULT_KINDS];
  if (list === 'none' || list === '') return [];
  const kinds = list.split(',').map((name) => name.trim());
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
      throw new Error(`unknown fault '${kind}': choose from ${FAULT_KINDS.join(', ')}, 'all' or 'none'`);
    }
  }
  return kinds as FaultKind[];
}

/** What the scheduler asks the cluster to do. */
export interface FaultTarget {
  memberIds(): readonly NodeId[];
  isAlive(id: NodeId): boolean;
  leader(): NodeId | undefined;
  crash(id: NodeId): void;
  restart(id: NodeId): void;
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void;
  blockLink(from: NodeId, to: NodeId): void;
  healPartitions(): void;
  clog(id: NodeId): void;
  unclog(id: NodeId): void;
  transferLeadership(from: NodeId, to: NodeId): void;
  note(text: string): void;
}

interface ScheduledAction {
  atTick: number;
  run: () => void;
}

export interface FaultRates {
  /** Chance per tick that a new disruptive fault starts (when none of its kind is active). */
  startProbabilityPerTick: number;
  minDurationTicks: number;
  maxDurationTicks: number;
  /** Chance that a newly elected leader is crashed or isolated within a few ticks. */
  failNewLeaderProbability: number;
}

export class FaultScheduler {
  private readonly kinds: ReadonlySet<FaultKind>;
  private readonly random: SeededRandom;
  private readonly rates: FaultRates;
  private actions: ScheduledAction[] = [];
  private partitionActive = false;
  private swizzleActive = false;
  faultsStarted = 0;

  constructor(kinds: readonly FaultKind[], random: SeededRandom, rates: FaultRates) {
    this.kinds = new Set(kinds);
    this.random = random;
    this.rates = rates;
  }

  has(kind: FaultKind): boolean {
    return this.kinds.has(kind);
  }

  tick(nowTick: number, target: FaultTarget): void {
    this.runDue(nowTick);
    if (!this.random.chance(this.rates.startProbabilityPerTick)) return;
    const disruptive = (['partition', 'asymmetric', 'swizzle', 'crash', 'transfer'] as const).filter((k) => this.kinds.has(k));
    if (disruptive.length === 0) return;
    const kind = disruptive[this.random.nextInt(disruptive.length)]!;
    this.start(kind, nowTick, target);
  }

  private runDue(nowTick: number): void {
    const due = this.actions.filter((action) => action.atTick <= nowTick);
    if (due.length === 0) return;
    this.actions = this.actions.filter((action) => action.atTick > nowTick);
    for (const action of due) action.run();
  }

  private later(atTick: number, run: () => void): void {
    this.actions.push({ atTick, run });
  }

  private duration(): number {
    return this.rates.minDurationTicks + this.random.nextInt(this.rates.maxDurationTicks - this.rates.minDurationTicks + 1);
  }

  private start(kind: FaultKind, nowTick: number, target: FaultTarget): void {
    const members = target.memberIds();
    switch (kind) {
      case 'partition':
      case 'asymmetric':
        if (this.partitionActive) return;
        this.partitionActive = true;
        if (kind === 'partition') this.startPartition(members, target);
        else this.startAsymmetric(members, target);
        this.later(nowTick + this.duration(), () => {
          target.healPartitions();
          target.note('heal partitions');
          this.partitionActive = false;
        });
        break;
      case 'swizzle':
        if (this.swizzleActive) return;
        this.swizzleActive = true;
        this.startSwizzle(members, nowTick, target);
        break;
      case 'crash':
        this.startCrash(members, nowTick, target);
        break;
      case 'transfer': {
        const leader = target.leader();
        if (leader === undefined) return;
        const others = members.filter((id) => id !== leader);
        const to = others[this.random.nextInt(others.length)]!;
        target.note(`transfer leadership ${leader} -> ${to}`);
        target.transferLeadership(leader, to);
        break;
      }
      default:
        return;
    }
    this.faultsStarted++;
  }

  private shuffled(members: readonly NodeId[]): NodeId[] {
    const copy = members.slice();
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.random.nextInt(i + 1);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  private startPartition(members: readonly NodeId[], target: FaultTarget): void {
    const order = this.shuffled(members);
    const sizeA = 1 + this.random.nextInt(members.length - 1);
    const sideA = order.slice(0, sizeA);
    const sideB = order.slice(sizeA);
    // Isolating the leader is the most interesting case: do it often.
    const leader = target.leader();
    if (leader !== undefined && this.random.chance(0.5) && !sideA.includes(leader)) {
      sideB.splice(sideB.indexOf(leader), 1, sideA[0]!);
      sideA[0] = leader;
    }
    target.partition(sideA, sideB);
    target.note(`partition [${sideA.join(',')}] | [${sideB.join(',')}]`);
  }

  private startAsymmetric(members: readonly NodeId[], target: FaultTarget): void {
    const cuts: string[] = [];
    for (const from of members) {
      for (const to of members) {
        if (from !== to && this.random.chance(0.3)) {
          target.blockLink(from, to);
          cuts.push(`${from}->${to}`);
        }
      }
    }
    target.note(`cut links ${cuts.join(' ') || '(none)'}`);
  }

  private startSwizzle(members: readonly NodeId[], nowTick: number, target: FaultTarget): void {
    const victims = this.shuffled(members).slice(0, 1 + this.random.nextInt(members.length));
    const step = Math.max(1, Math.floor(this.duration() / (2 * victims.length)));
    victims.forEach((id, i) => this.later(nowTick + i * step, () => {
      target.clog(id);
      target.note(`clog ${id}`);
    }));
    const unclogOrder = this.shuffled(victims);
    const unclogFrom = nowTick + victims.length * step;
    unclogOrder.forEach((id, i) => this.later(unclogFrom + (i + 1) * step, () => {
      target.unclog(id);
      target.note(`unclog ${id}`);
    }));
    this.later(unclogFrom + (unclogOrder.length + 1) * step, () => {
      this.swizzleActive = false;
    });
  }

  private startCrash(members: readonly NodeId[], nowTick: number, target: FaultTarget): void {
    const alive = members.filter((id) => target.isAlive(id));
    if (alive.length === 0) return;
    // Prefer the leader half the time: its crash exercises the most recovery paths.
    const leader = target.leader();
    const victim = leader !== undefined && this.random.chance(0.5) ? leader : alive[this.random.nextInt(alive.length)]!;
    target.crash(victim);
    target.note(`crash ${victim}`);
    this.later(nowTick + this.duration(), () => {
      if (target.isAlive(victim)) return;
      target.restart(victim);
      target.note(`restart ${victim}`);
    });
  }

  /**
   * Adversarial timing: a leader that fails right after its election leaves entries of its term on
   * few members or only itself, the raw material of the Figure 8 hazard. So sometimes crash or
   * isolate a new leader within a few ticks of its election.
   */
  leaderElected(leader: NodeId, nowTick: number, target: FaultTarget): void {
    if (!this.random.chance(this.rates.failNewLeaderProbability)) return;
    const actions = (['crash', 'partition', 'swizzle'] as const).filter((kind) => this.kinds.has(kind));
    if (actions.length === 0) return;
    const action = actions[this.random.nextInt(actions.length)]!;
    if (action === 'partition' && this.partitionActive) return;
    const atTick = nowTick + this.random.nextInt(3);
    if (action === 'swizzle') {
      // A stalled link that later flushes: the leader's queued messages arrive after others moved on.
      this.later(atTick, () => {
        target.clog(leader);
        target.note(`clog new leader ${leader}`);
      });
      this.later(atTick + this.duration(), () => {
        target.unclog(leader);
        target.note(`unclog ${leader}`);
      });
      return;
    }
    if (action === 'partition') {
      this.partitionActive = true;
      this.later(atTick, () => {
        const others = target.memberIds().filter((id) => id !== leader);
        target.partition([leader], others);
        target.note(`isolate new leader ${leader}`);
      });
      this.later(atTick + this.duration(), () => {
        target.healPartitions();
        target.note('heal partitions');
        this.partitionActive = false;
      });
      return;
    }
    this.later(atTick, () => {
      if (!target.isAlive(leader)) return;
      target.crash(leader);
      target.note(`crash new leader ${leader}`);
    });
    this.later(atTick + this.duration(), () => {
      if (target.isAlive(leader)) return;
      target.restart(leader);
      target.note(`restart ${leader}`);
    });
  }

  /** Ends every fault at once (the liveness phase). */
  healAll(target: FaultTarget): void {
    this.actions = [];
    this.partitionActive = false;
    this.swizzleActive = false;
    target.healPartitions();
    for (const id of target.memberIds()) {
      target.unclog(id);
      if (!target.isAlive(id)) target.restart(id);
    }
  }
}
