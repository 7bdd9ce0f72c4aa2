// The vocabulary of the Raft core: messages, log entries and the state that must be persisted.
// Member IDs are 64-bit (bigint) as in etcd; terms and log indexes are integers below 2^53 and are
// checked where they enter the core.

export type NodeId = bigint;

/** No node: used for "no vote" and "no leader". */
export const NO_NODE: NodeId = 0n;

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque to Raft. An empty normal entry is the no-op a new leader appends. */
  data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'addLearner' | 'removeNode';

/**
 * A single-server membership change. Only one may be pending at a time (Raft thesis §4.1),
 * and a new leader accepts none until an entry of its own term is applied (the known fix for
 * single-server changes, thesis §4.1 and the raft-dev "bug in single-server membership changes").
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to Raft; the application may carry e.g. the new member's address. */
  context: Uint8Array;
}

/** The membership that the state machine has applied. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Raft's persistent state (Figure 2): written to stable storage before responding to RPCs. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

export type MessageType =
  | 'MsgHup' // local: start an election
  | 'MsgBeat' // local: leader sends heartbeats
  | 'MsgProp' // propose entries (local, or forwarded by a follower)
  | 'MsgApp'
  | 'MsgAppResp'
  | 'MsgVote'
  | 'MsgVoteResp'
  | 'MsgPreVote'
  | 'MsgPreVoteResp'
  | 'MsgSnap'
  | 'MsgHeartbeat'
  | 'MsgHeartbeatResp'
  | 'MsgUnreachable' // local: the transport could not reach a peer
  | 'MsgSnapStatus' // local: the transport reports whether a snapshot was delivered
  | 'MsgCheckQuorum' // local: leader verifies it still hears from a quorum
  | 'MsgTransferLeader'
  | 'MsgTimeoutNow'
  | 'MsgReadIndex'
  | 'MsgReadIndexResp';

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** The term of the entry at `index` (MsgApp: of the entry before the new ones; votes: last log term). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** On a rejected MsgAppResp: the follower's hint of where the leader should look next. */
  rejectHint: number;
  snapshot?: Snapshot;
  /** Heartbeat and read-index context; for MsgVote/MsgPreVote, 'transfer' marks a leadership transfer. */
  context: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** State that is useful for logging and for the application, but need not be persisted. */
export interface SoftState {
  leader: NodeId;
  role: Role;
}

/** The answer to a readIndex(ctx) request: reads may be served once `applied >= index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * A batch of work for the application. The contract (as in etcd's raft):
 * 1. persist `hardState`, `entries` and `snapshot` (fsync when `mustSync`);
 * 2. only then send `messages`;
 * 3. apply `snapshot` then `committedEntries` to the state machine, in order;
 * 4. call `advance()`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}

export const EMPTY_BYTES = new Uint8Array(0);

export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    from: NO_NODE,
    to: NO_NODE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...fields,
  };
}

/** True for messages that only ever travel inside one node, never over the network. */
export function isLocalMessage(type: MessageType): boolean {
  return (
    type === 'MsgHup' ||
    type === 'MsgBeat' ||
    type === 'MsgUnreachable' ||
    type === 'MsgSnapStatus' ||
    type === 'MsgCheckQuorum'
  );
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === 'MsgAppResp' ||
    type === 'MsgVoteResp' ||
    type === 'MsgHeartbeatResp' ||
    type === 'MsgUnreachable' ||
    type === 'MsgPreVoteResp'
  );
}

export function voteResponseType(type: MessageType): MessageType {
  if (type === 'MsgVote') return 'MsgVoteResp';
  if (type === 'MsgPreVote') return 'MsgPreVoteResp';
  throw new RaftBugError(`not a vote message: ${type}`);
}

/** An assertion failed inside the core: a programming error, never an operating condition. */
export class RaftBugError extends Error {
  override name = 'RaftBugError';
}

/** An expected failure the caller can handle (a proposal dropped, an index compacted, ...). */
export type RaftErrorCode =
  | 'CONCORD_E_PROPOSAL_DROPPED'
  | 'CONCORD_E_COMPACTED'
  | 'CONCORD_E_SNAP_OUT_OF_DATE'
  | 'CONCORD_E_UNAVAILABLE'
  | 'CONCORD_E_SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  | 'CONCORD_E_STEP_LOCAL_MSG'
  | 'CONCORD_E_STEP_PEER_NOT_FOUND'
  | 'CONCORD_E_CONFIG_INVALID'
  | 'CONCORD_E_INDEX_OUT_OF_RANGE';

export class RaftError extends Error {
  override name = 'RaftError';
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

export const MAX_SAFE_INDEX = Number.MAX_SAFE_INTEGER;

/** Terms and indexes travel as JS numbers; anything that is not a safe non-negative integer is refused. */
export function assertIndexLike(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RaftError('CONCORD_E_INDEX_OUT_OF_RANGE', `${what} must be an integer in [0, 2^53), got ${value}`);
  }
}

export function entrySizeBytes(entry: Entry): number {
  // A fixed overhead approximates the framing of term, index and type on the wire.
  return entry.data.byteLength + 24;
}

export function entriesSizeBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entrySizeBytes(entry);
  return total;
}

/** Takes entries from the front while their total stays within maxBytes; always keeps at least one. */
export function limitEntriesSize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entrySizeBytes(entries[0]!);
  let count = 1;
  while (count < entries.length) {
    size += entrySizeBytes(entries[count]!);
    if (size > maxBytes) break;
    count++;
  }
  return count === entries.length ? entries : entries.slice(0, count);
}

export function isEmptySnapshot(snapshot: Snapshot | undefined): boolean {
  return snapshot === undefined || snapshot.metadata.index === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
