// A simulated network between Raft members: per-message delay with jitter (which reorders), random
// drops and duplicates, symmetric and one-way partitions, and "clogging" (FoundationDB's term: a
// clogged node's messages are held, not lost, until it is unclogged). Everything is decided by the
// seeded generator passed in, so a seed replays the same deliveries.

import type { Message, NodeId } from '../consensus/types.ts';
import type { SeededRandom } from '../random/seeded-random.ts';

export interface NetworkConfig {
  /** Minimum ticks a message spends in flight. */
  minDelayTicks: number;
  /** Extra random delay in [0, jitterTicks]: messages sent later may arrive earlier. */
  jitterTicks: number;
  dropProbability: number;
  duplicateProbability: number;
  /** Messages in flight beyond this are dropped, as a full socket buffer would. */
  maxInFlightMessages: number;
}

export type DeliveryFailure = 'partition' | 'crashed' | 'random-drop' | 'overflow';

interface InFlight {
  deliverAtTick: number;
  /** Tie-breaker that keeps delivery order deterministic for equal ticks. */
  sequence: number;
  message: Message;
}

export interface NetworkEvents {
  deliver(message: Message): void;
  /** Called for every message lost, so the sender's transport can report it as etcd's does. */
  lost(message: Message, why: DeliveryFailure): void;
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

export class SimNetwork {
  config: NetworkConfig;
  private readonly random: SeededRandom;
  private queue: InFlight[] = [];
  private sequence = 0;
  private readonly blockedLinks = new Set<string>();
  private readonly cloggedNodes = new Set<NodeId>();
  delivered = 0;
  dropped = 0;
  duplicated = 0;

  constructor(config: NetworkConfig, random: SeededRandom) {
    this.config = config;
    this.random = random;
  }

  send(message: Message, nowTick: number, events: NetworkEvents): void {
    if (this.isBlocked(message.from, message.to)) {
      events.lost(message, 'partition');
      this.dropped++;
      return;
    }
    if (this.random.chance(this.config.dropProbability)) {
      events.lost(message, 'random-drop');
      this.dropped++;
      return;
    }
    this.enqueue(message, nowTick, events);
    if (this.random.chance(this.config.duplicateProbability)) {
      this.duplicated++;
      this.enqueue(message, nowTick, events);
    }
  }

  private enqueue(message: Message, nowTick: number, events: NetworkEvents): void {
    if (this.queue.length >= this.config.maxInFlightMessages) {
      events.lost(message, 'overflow');
      this.dropped++;
      return;
    }
    const delay = this.config.minDelayTicks + this.random.nextInt(this.config.jitterTicks + 1);
    this.queue.push({ deliverAtTick: nowTick + delay, sequence: this.sequence++, message });
  }

  /** Delivers every message due by `nowTick`; messages of clogged nodes wait. */
  deliverDue(nowTick: number, isAlive: (id: NodeId) => boolean, events: NetworkEvents): void {
    const due: InFlight[] = [];
    const kept: InFlight[] = [];
    for (const item of this.queue) {
      if (item.deliverAtTick > nowTick) kept.push(item);
      else if (this.cloggedNodes.has(item.message.from) || this.cloggedNodes.has(item.message.to)) {
        kept.push(item); // held back until the clog clears
      } else due.push(item);
    }
    this.queue = kept;
    due.sort((a, b) => a.deliverAtTick - b.deliverAtTick || a.sequence - b.sequence);
    for (const { message } of due) {
      if (this.isBlocked(message.from, message.to)) {
        events.lost(message, 'partition');
        this.dropped++;
      } else if (!isAlive(message.to)) {
        events.lost(message, 'crashed');
        this.dropped++;
      } else {
        this.delivered++;
        events.deliver(message);
      }
    }
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blockedLinks.has(linkKey(from, to));
  }

  /** Cuts the link in one direction only (an asymmetric partition). */
  blockLink(from: NodeId, to: NodeId): void {
    this.blockedLinks.add(linkKey(from, to));
  }

  /** Splits the members into two sides that cannot talk to each other. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.blockLink(a, b);
        this.blockLink(b, a);
      }
    }
  }

  clog(node: NodeId): void {
    this.cloggedNodes.add(node);
  }

  unclog(node: NodeId): void {
    this.cloggedNodes.delete(node);
  }

  cloggedCount(): number {
    return this.cloggedNodes.size;
  }

  healPartitions(): void {
    this.blockedLinks.clear();
  }

  healAll(): void {
    this.blockedLinks.clear();
    this.cloggedNodes.clear();
  }

  inFlightCount(): number {
    return this.queue.length;
  }

  describePartitions(): string {
    return [...this.blockedLinks].sort().join(' ') || 'none';
  }
}
