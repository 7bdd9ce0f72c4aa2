// The peer transport's limits, each named with its unit, with the defaults a member uses.

export interface TransportLimits {
  /** Largest frame accepted after the handshake (a MsgApp batch, an RPC); larger closes the connection. */
  maxFrameBytes: number;
  /** Bytes waiting in one peer's outbound buffer; beyond this messages are dropped and Raft retries. */
  maxQueuedBytesPerPeer: number;
  /** Largest snapshot a member accepts from a leader. */
  maxSnapshotBytes: number;
  /** Snapshots are streamed in chunks of this size, each written only when the socket drains. */
  snapshotChunkBytes: number;
  /** A snapshot not acknowledged by the receiver within this time counts as not delivered. */
  snapshotTimeoutMs: number;
  dialTimeoutMs: number;
  /** A connection that has not completed its HELLO exchange within this time is closed. */
  handshakeTimeoutMs: number;
  /** A frame begun but not finished, with no byte arriving for this long, closes the connection. */
  partialFrameTimeoutMs: number;
  /** Reconnect backoff: starts at reconnectMinMs, doubles per failure up to reconnectMaxMs, jittered. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Inbound connections accepted at once (streams, snapshots and join requests together). */
  maxInboundConnections: number;
  /** A removed peer's stream stays open this long, for answers still under way on it. */
  removedPeerGraceMs: number;
}

export const TRANSPORT_DEFAULTS: TransportLimits = {
  maxFrameBytes: 64 * 1024 * 1024,
  maxQueuedBytesPerPeer: 32 * 1024 * 1024,
  maxSnapshotBytes: 2 * 1024 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  snapshotTimeoutMs: 60_000,
  dialTimeoutMs: 1_000,
  handshakeTimeoutMs: 2_000,
  partialFrameTimeoutMs: 10_000,
  reconnectMinMs: 50,
  reconnectMaxMs: 1_000,
  maxInboundConnections: 256,
  removedPeerGraceMs: 3_000,
};

export interface TransportLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
