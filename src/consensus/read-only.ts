// Linearizable reads without writing to the log (Raft thesis §6.4): the leader records its commit
// index, confirms with a round of heartbeats that it is still the leader, and then the read may be
// served once the state machine has applied up to that index.

import type { Message, NodeId } from './types.ts';

export type ReadOnlyOption =
  /** Confirm leadership with a heartbeat round for every read (the default, always safe). */
  | 'safe'
  /**
   * Trust the leader lease instead of a heartbeat round: faster, but a leader whose clock runs
   * slow relative to the others can serve a stale read. Opt-in only, and only with checkQuorum.
   */
  | 'lease';

interface PendingRead {
  index: number;
  request: Message;
  acks: Set<NodeId>;
}

/** Pending read-index requests, in arrival order, keyed by their context bytes. */
export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  private queue: string[] = [];

  static key(context: Uint8Array): string {
    let key = '';
    for (const byte of context) key += byte.toString(16).padStart(2, '0');
    return key;
  }

  /** Adds a read that must be served at `index`, once a quorum acknowledges `request.context`. */
  addRequest(index: number, request: Message): void {
    const key = ReadOnlyQueue.key(request.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, request, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat acknowledgement; returns who has acknowledged this context so far. */
  recvAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const read = this.pending.get(ReadOnlyQueue.key(context));
    if (!read) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /**
   * A quorum acknowledged `context`: that read, and every read queued before it (their
   * heartbeats were sent earlier, so the same confirmation covers them), can be served.
   */
  advance(context: Uint8Array): { index: number; request: Message }[] {
    const key = ReadOnlyQueue.key(context);
    const position = this.queue.indexOf(key);
    if (position < 0) return [];
    const served = this.queue.slice(0, position + 1).map((k) => {
      const read = this.pending.get(k)!;
      this.pending.delete(k);
      return { index: read.index, request: read.request };
    });
    this.queue = this.queue.slice(position + 1);
    return served;
  }

  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.request.context;
  }

  size(): number {
    return this.queue.length;
  }
}
