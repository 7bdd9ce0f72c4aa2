// One simulated Concord member: a RaftNode, its simulated disk and its state machine, driven the
// way the real server's Ready loop drives them. A disk write takes simulated time; a crash loses
// whatever was not yet written (fsynced), and a restart rebuilds the member from its disk alone.

import { decodeConfChange } from '../consensus/conf-change-codec.ts';
import type { RaftConfig } from '../consensus/raft.ts';
import { RaftNode } from '../consensus/raft-node.ts';
import type { MemoryStorage } from '../consensus/storage.ts';
import type { Entry, HardState, Message, NodeId, Ready, Role } from '../consensus/types.ts';
import { RaftError } from '../consensus/types.ts';
import type { KvOutput } from './kv-model.ts';
import { SimStateMachine, encodeCommand } from './sim-state-machine.ts';
import type { AppliedCommand, SimCommand } from './sim-state-machine.ts';
import { nextSnapshotIndex, snapshotPhase } from '../consensus/snapshot-schedule.ts';

/** What the cluster wants to observe or deliver when a member does something. */
export interface MemberHooks {
  send(message: Message): void;
  persisted(member: SimMember, entries: readonly Entry[], hardState: HardState | undefined): void;
  applied(member: SimMember, entry: Entry, command: AppliedCommand | undefined): void;
  roleChanged(member: SimMember, role: Role, term: number): void;
  readServed(member: SimMember, requestId: string, value: string | null): void;
}

export interface MemberSettings {
  /** About every this many applied entries, at the member's own phase (see consensus/snapshot-schedule.ts). */
  snapshotEveryEntries: number;
  /** Entries kept in the log behind a snapshot, so slightly lagging followers need no snapshot. */
  keptEntriesAfterSnapshot: number;
  /** Upper bound on Readies handled in one tick, so a member cannot spin forever. */
  maxReadiesPerTick: number;
  sendBeforePersist: boolean;
}

interface DiskWrite {
  ready: Ready;
  completeAtTick: number;
  /** The Ready's messages went out when it was taken (the send-before-persist bug). */
  sentEarly: boolean;
}

interface PendingRead {
  key: string;
  /** Set once leadership is confirmed: the read may be served when applied >= readIndex. */
  readIndex?: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class SimMember {
  readonly id: NodeId;
  alive = true;
  node: RaftNode;
  /** What survives a crash: everything fsynced so far. */
  readonly disk: MemoryStorage;
  machine: SimStateMachine;
  private write: DiskWrite | undefined;
  private pendingReads = new Map<string, PendingRead>();
  private readonly makeConfig: (storage: MemoryStorage, applied: number) => RaftConfig;
  private readonly settings: MemberSettings;
  private readonly hooks: MemberHooks;

  constructor(
    id: NodeId,
    disk: MemoryStorage,
    makeConfig: (storage: MemoryStorage, applied: number) => RaftConfig,
    settings: MemberSettings,
    hooks: MemberHooks,
  ) {
    this.id = id;
    this.disk = disk;
    this.makeConfig = makeConfig;
    this.settings = settings;
    this.hooks = hooks;
    this.machine = SimStateMachine.restore(disk.snapshot().data);
    this.node = new RaftNode(makeConfig(disk, disk.snapshot().metadata.index));
  }

  /** Loses everything not yet on disk: the in-memory log, the pending write, waiting requests. */
  crash(): void {
    this.alive = false;
    this.write = undefined;
    this.pendingReads.clear();
  }

  restart(): void {
    const applied = this.disk.snapshot().metadata.index;
    this.machine = SimStateMachine.restore(this.disk.snapshot().data);
    this.node = new RaftNode(this.makeConfig(this.disk, applied));
    this.alive = true;
  }

  tick(): void {
    this.node.tick();
  }

  step(message: Message): void {
    try {
      this.node.step(message);
    } catch (error) {
      // A response from a member we no longer track is harmless; anything else is a real bug.
      if (error instanceof RaftError && error.code === 'CONCORD_E_STEP_PEER_NOT_FOUND') return;
      throw error;
    }
  }

  /** Proposes a client's write; false when this member cannot accept it (no leader known). */
  proposeWrite(command: SimCommand): boolean {
    return this.node.propose(encodeCommand(command)).accepted;
  }

  /** Starts a linearizable read; it is answered through hooks.readServed, or never (the client times out). */
  startRead(requestId: string, key: string): void {
    this.pendingReads.set(requestId, { key });
    this.node.readIndex(textEncoder.encode(requestId));
  }

  /** Runs the Ready loop for this tick: finish a due disk write, then start the next one. */
  process(nowTick: number, diskLatencyTicks: () => number): void {
    for (let i = 0; i < this.settings.maxReadiesPerTick; i++) {
      // As the production member (src/server/raft-member.ts): messages that promise nothing durable
      // (a leader's appends, forwarded proposals) go out at once, even while a write is in flight;
      // committed entries are applied as the Ready is taken, beside its write. The core counts a
      // leader's own entries only once persisted, which keeps both safe.
      this.sendAll(this.node.takeEarlyMessages());
      if (this.write) {
        if (this.write.completeAtTick > nowTick) return;
        this.completeWrite(this.write);
        this.write = undefined;
        this.sendAll(this.node.takeEarlyMessages());
      }
      if (!this.node.hasReady()) return;
      const ready = this.node.ready();
      this.observeRole(ready);
      this.recordReadStates(ready);
      const sentEarly = this.settings.sendBeforePersist;
      if (sentEarly) this.sendAll(ready.messages);
      if (!ready.snapshot) this.applyCommitted(ready);
      // Only an fsync costs time; a Ready with nothing to make durable completes at once.
      const needsSync = ready.mustSync || ready.snapshot !== undefined;
      this.write = { ready, completeAtTick: nowTick + (needsSync ? diskLatencyTicks() : 0), sentEarly };
    }
  }

  private observeRole(ready: Ready): void {
    if (!ready.softState) return;
    this.hooks.roleChanged(this, ready.softState.role, this.node.raft.term);
  }

  private recordReadStates(ready: Ready): void {
    for (const readState of ready.readStates) {
      const pending = this.pendingReads.get(textDecoder.decode(readState.context));
      if (pending) pending.readIndex = readState.index;
    }
  }

  /** The disk write finished: the Ready contract's remaining steps (send, apply a snapshot, advance). */
  private completeWrite(write: DiskWrite): void {
    const { ready } = write;
    if (ready.snapshot) this.disk.applySnapshot(ready.snapshot);
    this.disk.append(ready.entries);
    if (ready.hardState) this.disk.setHardState(ready.hardState);
    this.hooks.persisted(this, ready.entries, ready.hardState);
    if (!write.sentEarly) this.sendAll(ready.messages);
    if (ready.snapshot) {
      this.machine = SimStateMachine.restore(ready.snapshot.data);
      this.applyCommitted(ready);
    }
    this.node.advance();
    this.maybeSnapshot();
  }

  private applyCommitted(ready: Ready): void {
    for (const entry of ready.committedEntries) this.applyEntry(entry);
    this.serveReads();
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) this.hooks.send(message);
  }

  private applyEntry(entry: Entry): void {
    if (entry.type === 'confChange') {
      this.node.applyConfChange(decodeConfChange(entry.data));
      this.hooks.applied(this, entry, undefined);
      return;
    }
    this.hooks.applied(this, entry, this.machine.apply(entry));
  }

  private serveReads(): void {
    const applied = this.node.raft.log.applied;
    for (const [requestId, read] of this.pendingReads) {
      if (read.readIndex === undefined || read.readIndex > applied) continue;
      this.pendingReads.delete(requestId);
      this.hooks.readServed(this, requestId, this.machine.read(read.key));
    }
  }

  private maybeSnapshot(): void {
    const applied = this.node.raft.log.applied;
    const snapshotIndex = this.disk.snapshot().metadata.index;
    const every = this.settings.snapshotEveryEntries;
    const due = nextSnapshotIndex(snapshotIndex, every, snapshotPhase(this.id, this.node.raft.confState(), every));
    if (applied < due || applied > this.disk.lastIndex()) return;
    this.disk.createSnapshot(applied, this.node.raft.confState(), this.machine.snapshot());
    const compactIndex = applied - this.settings.keptEntriesAfterSnapshot;
    if (compactIndex >= this.disk.firstIndex()) this.disk.compact(compactIndex);
  }

  /** Drops a read that its client abandoned, so waiting reads stay bounded. */
  forgetRead(requestId: string): void {
    this.pendingReads.delete(requestId);
  }
}

export type { KvOutput };
