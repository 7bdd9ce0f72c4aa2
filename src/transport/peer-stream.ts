// A member's outbound stream to one peer: it dials the peer, introduces itself (HELLO), then
// carries Raft messages and RPC requests to it; RPC responses come back on the same connection.
// It reconnects with jittered exponential backoff for as long as the peer is in the cluster.
//
// Its queue is the socket's write buffer, bounded by maxQueuedBytes: when the peer cannot keep up
// (or the stream is down), messages are dropped and Raft is told the peer is unreachable, so it
// falls back to probing and re-sends what is missing. Nothing grows without limit.

import type { Random } from '../random/seeded-random.ts';
import type { Frame } from './frame.ts';
import { FRAME_TYPES, PROTOCOL_VERSION, decodeJsonWithId, decodeReject, encodeHello } from './frame.ts';
import type { RejectReason } from './frame.ts';
import { PeerConnection, dial } from './peer-connection.ts';
import type { PeerDialTls } from './peer-connection.ts';
import { ReconnectBackoff } from './reconnect-backoff.ts';
import type { TransportLimits, TransportLogger } from './transport-options.ts';

export interface PeerStreamOptions {
  selfId: bigint;
  peerId: bigint;
  clusterId: bigint;
  /** The peer's current URLs (they can change with MemberUpdate). */
  urls: () => readonly URL[];
  localAddress?: string;
  tls?: PeerDialTls;
  limits: TransportLimits;
  random: Random;
  logger: TransportLogger;
  onRejected(reason: RejectReason, text: string): void;
  onRpcResponse(id: number, document: unknown): void;
  /** The stream went down: pending RPCs on it will get no answer. */
  onDisconnected(): void;
}

type StreamState = 'idle' | 'connecting' | 'connected' | 'stopped';

export class PeerStream {
  private readonly options: PeerStreamOptions;
  private state: StreamState = 'idle';
  private connection: PeerConnection | undefined;
  private readonly backoff: ReconnectBackoff;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private urlCursor = 0;
  /** Logged once per outage, not once per attempt. */
  private lastProblem: string | undefined;
  droppedMessages = 0;

  constructor(options: PeerStreamOptions) {
    this.options = options;
    this.backoff = new ReconnectBackoff({ minMs: options.limits.reconnectMinMs, maxMs: options.limits.reconnectMaxMs }, options.random);
  }

  start(): void {
    if (this.state === 'idle') void this.connect();
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /**
   * Queues framed bytes holding `messageCount` messages. Returns false (and the bytes are dropped)
   * when the stream is down or its queue is full.
   */
  send(framed: Uint8Array, messageCount: number): boolean {
    const connection = this.connection;
    if (this.state !== 'connected' || !connection) {
      this.droppedMessages += messageCount;
      return false;
    }
    if (connection.queuedBytes + framed.byteLength > this.options.limits.maxQueuedBytesPerPeer) {
      this.droppedMessages += messageCount;
      return false;
    }
    connection.writeFramed(framed);
    return true;
  }

  stop(): void {
    this.state = 'stopped';
    clearTimeout(this.reconnectTimer);
    this.connection?.close('transport stopped');
  }

  /** Drops the current connection and dials again at once (the peer's URLs changed). */
  reconnectNow(): void {
    if (this.state === 'stopped') return;
    this.backoff.reset();
    this.connection?.close('peer URLs changed');
  }

  private async connect(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    const urls = this.options.urls();
    const url = urls[this.urlCursor++ % Math.max(1, urls.length)];
    if (!url) {
      this.scheduleReconnect('no peer URL known');
      return;
    }
    let connection: PeerConnection;
    try {
      const socket = await dial({
        url,
        localAddress: this.options.localAddress,
        tls: this.options.tls,
        connectTimeoutMs: this.options.limits.dialTimeoutMs,
      });
      if ((this.state as StreamState) === 'stopped') {
        socket.destroy();
        return;
      }
      connection = new PeerConnection(socket, (frame) => this.onFrame(connection, frame), this.options.limits.partialFrameTimeoutMs);
    } catch (error) {
      this.scheduleReconnect(`cannot reach ${url.host}: ${(error as Error).message}`);
      return;
    }
    this.connection = connection;
    const handshakeTimer = setTimeout(() => connection.close(`no answer to HELLO within ${this.options.limits.handshakeTimeoutMs} ms`),
      this.options.limits.handshakeTimeoutMs);
    connection.onClose((reason) => {
      clearTimeout(handshakeTimer);
      if (this.connection === connection) this.connection = undefined;
      const wasConnected = this.state === 'connected';
      if (wasConnected) this.options.onDisconnected();
      this.scheduleReconnect(`connection to ${url.host} lost: ${reason}`);
    });
    connection.socket.once('data', () => clearTimeout(handshakeTimer));
    connection.write(FRAME_TYPES.HELLO, encodeHello({
      protocolVersion: PROTOCOL_VERSION,
      purpose: 'stream',
      clusterId: this.options.clusterId,
      fromId: this.options.selfId,
      toId: this.options.peerId,
      peerUrls: [],
    }));
  }

  private onFrame(connection: PeerConnection, frame: Frame): void {
    switch (frame.type) {
      case FRAME_TYPES.HELLO_OK:
        if (this.state !== 'connecting') throw new Error('a second HELLO_OK');
        this.state = 'connected';
        connection.decoder.maxFrameBytes = this.options.limits.maxFrameBytes;
        this.backoff.reset();
        if (this.lastProblem !== undefined) this.options.logger.info(`peer ${hex(this.options.peerId)} is reachable again`);
        this.lastProblem = undefined;
        return;
      case FRAME_TYPES.HELLO_REJECT: {
        const { reason, text } = decodeReject(frame.payload);
        this.options.onRejected(reason, text);
        connection.close(`peer refused the connection (${reason}): ${text}`);
        return;
      }
      case FRAME_TYPES.RPC_RESPONSE: {
        if (this.state !== 'connected') throw new Error('an RPC response before the handshake');
        const { id, document } = decodeJsonWithId(frame.payload, 'RPC response');
        this.options.onRpcResponse(id, document);
        return;
      }
      default:
        throw new Error(`unexpected frame type ${frame.type} on an outbound stream`);
    }
  }

  private scheduleReconnect(problem: string): void {
    if (this.state === 'stopped') return;
    this.state = 'idle';
    if (problem !== this.lastProblem) {
      this.options.logger.warn(`peer ${hex(this.options.peerId)}: ${problem}; retrying`);
      this.lastProblem = problem;
    }
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(), this.backoff.nextDelayMs());
  }

  /** Writes an RPC request; false when the stream is down. */
  sendRpc(payload: Uint8Array): boolean {
    if (this.state !== 'connected' || !this.connection) return false;
    return this.connection.write(FRAME_TYPES.RPC_REQUEST, payload) || true;
  }
}

export function hex(id: bigint): string {
  return id.toString(16);
}
