// Simulated clients: each issues one operation at a time (get, put or compare-and-set on a small
// key set) to some member, waits with a deadline, and retries through another member with the same
// session sequence, so a retried write is applied at most once. Every completed or abandoned
// operation goes into the history that the linearizability checker reads.

import type { NodeId } from '../consensus/types.ts';
import type { SeededRandom } from '../random/seeded-random.ts';
import type { KvInput, KvOperation, KvOutput } from './kv-model.ts';
import type { SimCommand } from './sim-state-machine.ts';

export interface WorkloadConfig {
  clients: number;
  keys: number;
  /** Ticks a client waits for an answer before retrying elsewhere. */
  requestTimeoutTicks: number;
  /** Ticks after its start at which a client gives up on an operation (a write's outcome is then unknown). */
  giveUpAfterTicks: number;
  /** After a member refuses at once (no leader known), wait up to this many ticks before the next try. */
  maxRefusalBackoffTicks: number;
  /** A client pauses up to this many ticks between operations. */
  maxThinkTicks: number;
  readFraction: number;
  casFraction: number;
}

/** What the workload asks of the cluster. */
export interface ClusterPort {
  memberIds(): readonly NodeId[];
  /** Returns false when the member refused at once (down, or no leader known). */
  proposeWrite(member: NodeId, command: SimCommand): boolean;
  startRead(member: NodeId, requestId: string, key: string): boolean;
  abandonRead(member: NodeId, requestId: string): void;
}

interface InFlightOperation {
  input: KvInput;
  callTick: number;
  /** Session sequence of a write (reads are not sequenced: they never enter the log). */
  sequence: number;
  attempts: number;
  /** Whether any attempt was accepted by a member: only then may the write have taken effect. */
  maybeApplied: boolean;
  deadlineTick: number;
  member: NodeId;
  readRequestId: string;
}

interface SimClient {
  id: string;
  nextSequence: number;
  operation: InFlightOperation | undefined;
  nextActionTick: number;
  preferredMember: NodeId | undefined;
}

export class Workload {
  readonly history: KvOperation[] = [];
  private readonly clients: SimClient[] = [];
  private readonly random: SeededRandom;
  private readonly config: WorkloadConfig;
  private writeCounter = 0;
  completedWrites = 0;
  completedReads = 0;
  /** The tick of the first write completed after `livenessFromTick`, if any. */
  firstWriteCompletedAfter: number | undefined;
  livenessFromTick = Number.POSITIVE_INFINITY;
  /** Clients with an index at or above this start no new operation (the liveness phase quiesces load). */
  private activeClients: number;

  constructor(config: WorkloadConfig, random: SeededRandom) {
    this.config = config;
    this.random = random;
    this.activeClients = config.clients;
    for (let i = 0; i < config.clients; i++) {
      this.clients.push({ id: `c${i}`, nextSequence: 1, operation: undefined, nextActionTick: 0, preferredMember: undefined });
    }
  }

  tick(nowTick: number, cluster: ClusterPort): void {
    for (const [index, client] of this.clients.entries()) {
      const operation = client.operation;
      if (!operation) {
        if (nowTick >= client.nextActionTick && index < this.activeClients) this.begin(client, nowTick, cluster);
      } else if (nowTick >= operation.deadlineTick) {
        this.retryOrGiveUp(client, operation, nowTick, cluster);
      }
    }
  }

  private begin(client: SimClient, nowTick: number, cluster: ClusterPort): void {
    const input = this.nextInput();
    const isWrite = input.kind !== 'get';
    const operation: InFlightOperation = {
      input,
      callTick: nowTick,
      sequence: isWrite ? client.nextSequence++ : 0,
      attempts: 0,
      maybeApplied: false,
      deadlineTick: 0,
      member: 0n,
      readRequestId: '',
    };
    client.operation = operation;
    this.attempt(client, operation, nowTick, cluster);
  }

  private nextInput(): KvInput {
    const key = `k${this.random.nextInt(this.config.keys)}`;
    const draw = this.random.nextFloat();
    if (draw < this.config.readFraction) return { kind: 'get', key };
    const value = `v${++this.writeCounter}`;
    if (draw < this.config.readFraction + this.config.casFraction) {
      // Expect a recent value often enough that some swaps succeed.
      const expected = this.writeCounter > 1 && this.random.chance(0.8) ? `v${this.writeCounter - 1 - this.random.nextInt(Math.min(3, this.writeCounter - 1))}` : null;
      return { kind: 'cas', key, expected, value };
    }
    return { kind: 'put', key, value };
  }

  private chooseMember(client: SimClient, cluster: ClusterPort): NodeId {
    const members = cluster.memberIds();
    if (client.preferredMember !== undefined && client.operation?.attempts === 0) return client.preferredMember;
    return members[this.random.nextInt(members.length)]!;
  }

  private attempt(client: SimClient, operation: InFlightOperation, nowTick: number, cluster: ClusterPort): void {
    operation.attempts++;
    const member = this.chooseMember(client, cluster);
    operation.member = member;
    operation.deadlineTick = nowTick + this.config.requestTimeoutTicks;
    const input = operation.input;
    let accepted: boolean;
    if (input.kind === 'get') {
      operation.readRequestId = `${client.id}/r${nowTick}/${operation.attempts}`;
      accepted = cluster.startRead(member, operation.readRequestId, input.key);
    } else {
      accepted = cluster.proposeWrite(member, { clientId: client.id, sequence: operation.sequence, op: input });
      if (accepted) operation.maybeApplied = true;
    }
    // A refusal is immediate: try another member soon instead of waiting out the deadline.
    if (!accepted) {
      operation.deadlineTick = nowTick + 1 + this.random.nextInt(this.config.maxRefusalBackoffTicks);
      client.preferredMember = undefined;
    }
  }

  private retryOrGiveUp(client: SimClient, operation: InFlightOperation, nowTick: number, cluster: ClusterPort): void {
    if (operation.input.kind === 'get') cluster.abandonRead(operation.member, operation.readRequestId);
    if (nowTick - operation.callTick < this.config.giveUpAfterTicks) {
      this.attempt(client, operation, nowTick, cluster);
      return;
    }
    // A write that some member accepted may still be applied at any later time: its outcome is
    // unknown. One never accepted, and any read, had no effect and is left out of the history.
    if (operation.input.kind !== 'get' && operation.maybeApplied) {
      this.history.push({ clientId: this.clientNumber(client), input: operation.input, callTime: operation.callTick, returnTime: undefined, output: undefined });
    }
    this.finish(client, nowTick);
  }

  private finish(client: SimClient, nowTick: number): void {
    client.operation = undefined;
    client.nextActionTick = nowTick + this.random.nextInt(this.config.maxThinkTicks + 1);
  }

  private clientNumber(client: SimClient): number {
    return Number(client.id.slice(1));
  }

  /** A member applied a client's write (or found it already applied) and answers. */
  writeAnswered(clientId: string, sequence: number, output: KvOutput, member: NodeId, nowTick: number): void {
    const client = this.clients.find((c) => c.id === clientId);
    const operation = client?.operation;
    if (!client || !operation || operation.input.kind === 'get' || operation.sequence !== sequence) return;
    if (operation.member !== member) return; // an answer to an earlier attempt, from a member the client left
    this.history.push({ clientId: this.clientNumber(client), input: operation.input, callTime: operation.callTick, returnTime: nowTick, output });
    this.completedWrites++;
    if (operation.callTick >= this.livenessFromTick && this.firstWriteCompletedAfter === undefined) {
      this.firstWriteCompletedAfter = nowTick;
    }
    client.preferredMember = member;
    this.finish(client, nowTick);
  }

  readAnswered(requestId: string, value: string | null, member: NodeId, nowTick: number): void {
    const client = this.clients.find((c) => c.operation?.readRequestId === requestId);
    const operation = client?.operation;
    if (!client || !operation || operation.input.kind !== 'get') return;
    const output: KvOutput = { kind: 'get', value };
    this.history.push({ clientId: this.clientNumber(client), input: operation.input, callTime: operation.callTick, returnTime: nowTick, output });
    this.completedReads++;
    client.preferredMember = member;
    this.finish(client, nowTick);
  }

  /** Lets only the first `count` clients start new operations; the others finish what they have. */
  limitActiveClients(count: number): void {
    this.activeClients = count;
  }

  /** Whether any client still waits for an answer. */
  busy(): boolean {
    return this.clients.some((client) => client.operation !== undefined);
  }

  /** Writes still in flight at the end: their outcome is unknown. */
  closeHistory(): void {
    for (const client of this.clients) {
      const operation = client.operation;
      if (operation && operation.input.kind !== 'get' && operation.maybeApplied) {
        this.history.push({ clientId: this.clientNumber(client), input: operation.input, callTime: operation.callTick, returnTime: undefined, output: undefined });
      }
      client.operation = undefined;
    }
  }
}
