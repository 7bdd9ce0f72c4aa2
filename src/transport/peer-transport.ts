// The peer transport: how members of one cluster exchange Raft messages, snapshots and internal
// RPCs over TCP (optionally TLS, optionally with client certificates required).
//
// Each member dials every peer once and sends on that connection (a "stream"); it receives on the
// connections its peers dialed. A member's HELLO names the cluster and both members; a peer from
// another cluster, a member that was removed, or a member this one does not know is refused with
// a reason and a log line. Snapshots travel on connections of their own (snapshot-stream.ts). A
// member that wants to join asks any member for the cluster's membership (purpose 'join').
//
// The transport never blocks Raft: send() encodes and queues; a peer that is down or too slow
// loses messages (counted, and reported to Raft as unreachable), which Raft re-sends.

import { createServer as createTcpServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TlsOptions } from 'node:tls';
import type { Message } from '../consensus/types.ts';
import type { Random } from '../random/seeded-random.ts';
import type { Frame, Hello, RejectReason } from './frame.ts';
import {
  FRAME_HEADER_BYTES, FRAME_TYPES, PROTOCOL_VERSION, ProtocolError, decodeHello, decodeJsonWithId, encodeJson,
  encodeJsonWithId, encodeReject,
} from './frame.ts';
import { decodeMessage, encodeMessage } from './message-codec.ts';
import { PeerConnection } from './peer-connection.ts';
import type { PeerDialTls } from './peer-connection.ts';
import { PeerStream, hex } from './peer-stream.ts';
import { SnapshotReceiver, encodeAck, sendSnapshot } from './snapshot-stream.ts';
import { TRANSPORT_DEFAULTS } from './transport-options.ts';
import type { TransportLimits, TransportLogger } from './transport-options.ts';

/** What the transport asks of the member it serves. */
export interface TransportHandler {
  /** A Raft message from a peer (a MsgSnap arrives whole, with its data). */
  onMessage(message: Message): void;
  /** Raft should know that the last messages to `peer` were probably lost. */
  onUnreachable(peer: bigint): void;
  onSnapshotStatus(peer: bigint, delivered: boolean): void;
  /** Whether `id` may talk to this member now. */
  memberStatus(id: bigint): 'member' | 'removed' | 'unknown';
  /** A peer refused us because this member was removed from the cluster. */
  onRemovedFromCluster(text: string): void;
  /** An RPC from a peer; the result (or a thrown RpcError) goes back to it as JSON. */
  onRpc(from: bigint, method: string, params: unknown): Promise<unknown>;
  /** The answer to a join request from a member with these peer URLs. */
  onJoinRequest(peerUrls: readonly string[]): unknown;
}

export interface PeerTransportOptions {
  selfId: bigint;
  clusterId: bigint;
  listenUrls: readonly URL[];
  handler: TransportHandler;
  random: Random;
  logger: TransportLogger;
  limits?: Partial<TransportLimits>;
  /** Server-side TLS (with requestCert + rejectUnauthorized for mutual TLS); needed for https:// listen URLs. */
  serverTls?: TlsOptions;
  /** Client-side TLS for dialing https:// peers (its cert is presented when peers require one). */
  dialTls?: PeerDialTls;
  /** Bind outgoing connections to this local address (see DialOptions.localAddress). */
  localAddress?: string;
}

/** An RPC failure that travels back to the caller with its code. */
export class RpcError extends Error {
  override name = 'RpcError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

interface PendingRpc {
  resolve(document: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  peer: bigint;
}

export class PeerTransport {
  private readonly options: PeerTransportOptions;
  readonly limits: TransportLimits;
  private readonly streams = new Map<bigint, PeerStream>();
  private readonly peerUrls = new Map<bigint, URL[]>();
  private readonly servers: NetServer[] = [];
  private readonly inbound = new Set<PeerConnection>();
  private readonly snapshotsInFlight = new Set<bigint>();
  private readonly pendingRpcs = new Map<number, PendingRpc>();
  private readonly retiredStreams = new Map<NodeJS.Timeout, PeerStream>();
  private nextRpcId = 1;
  private stopped = false;
  /** host:port of every listener actually bound. */
  readonly listenAddresses: string[] = [];
  /** Counters for metrics and tests. */
  readonly stats = { messagesSent: 0, messagesDropped: 0, messagesReceived: 0, connectionsRefused: 0, protocolErrors: 0 };

  constructor(options: PeerTransportOptions) {
    this.options = options;
    this.limits = { ...TRANSPORT_DEFAULTS, ...options.limits };
  }

  async start(): Promise<void> {
    for (const url of this.options.listenUrls) {
      const server = url.protocol === 'https:'
        ? createTlsServer({ ...this.requireServerTls(url) }, (socket) => this.accept(socket))
        : createTcpServer((socket) => this.accept(socket));
      server.maxConnections = this.limits.maxInboundConnections;
      // A TLS handshake failure (a peer without a valid certificate under mTLS) is logged and dropped.
      server.on('tlsClientError', (error: Error, socket: Socket) => {
        this.stats.connectionsRefused++;
        this.options.logger.warn(`refused a peer connection from ${socket.remoteAddress ?? '?'}: TLS: ${error.message}`);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(url.port), url.hostname.replace(/^\[|\]$/g, ''), () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address();
      if (address && typeof address === 'object') this.listenAddresses.push(`${address.address}:${address.port}`);
      this.servers.push(server);
    }
  }

  private requireServerTls(url: URL): TlsOptions {
    if (!this.options.serverTls) throw new Error(`listen URL ${url.href} is https:// but no peer certificate and key are configured`);
    return this.options.serverTls;
  }

  /** Sets the peers to talk to (everyone in the membership but this member); streams follow. */
  setPeers(peers: ReadonlyMap<bigint, readonly string[]>): void {
    if (this.stopped) return;
    for (const [id, stream] of this.streams) {
      if (peers.has(id)) continue;
      // A removed peer's stream lingers a moment: answers to RPCs it was serving (its own removal,
      // forwarded to it as the leader) still arrive on it.
      this.streams.delete(id);
      this.peerUrls.delete(id);
      const retired = setTimeout(() => {
        stream.stop();
        this.retiredStreams.delete(retired);
        this.failRpcsTo(id, 'the member was removed from the cluster');
      }, this.limits.removedPeerGraceMs);
      this.retiredStreams.set(retired, stream);
    }
    for (const [id, urls] of peers) {
      if (id === this.options.selfId) continue;
      const parsed = urls.map((url) => new URL(url));
      const previous = this.peerUrls.get(id);
      this.peerUrls.set(id, parsed);
      const existing = this.streams.get(id);
      if (existing) {
        if (previous && previous.map(String).join() !== parsed.map(String).join()) existing.reconnectNow();
        continue;
      }
      const stream = new PeerStream({
        selfId: this.options.selfId,
        peerId: id,
        clusterId: this.options.clusterId,
        urls: () => this.peerUrls.get(id) ?? [],
        localAddress: this.options.localAddress,
        tls: this.options.dialTls,
        limits: this.limits,
        random: this.options.random,
        logger: this.options.logger,
        onRejected: (reason, text) => this.onRejected(id, reason, text),
        onRpcResponse: (rpcId, document) => this.onRpcResponse(rpcId, document),
        onDisconnected: () => this.failRpcsTo(id, 'the connection to the peer was lost'),
      });
      this.streams.set(id, stream);
      stream.start();
    }
  }

  isConnected(peer: bigint): boolean {
    return this.streams.get(peer)?.isConnected ?? false;
  }

  /** Sends a Ready's messages: one write per peer; MsgSnap goes on its own stream. */
  send(messages: readonly Message[]): void {
    if (this.stopped) return;
    const byPeer = new Map<bigint, Uint8Array[]>();
    for (const message of messages) {
      if (message.type === 'MsgSnap') {
        this.startSnapshot(message);
        continue;
      }
      let frames = byPeer.get(message.to);
      if (!frames) byPeer.set(message.to, (frames = []));
      frames.push(encodeMessage(message));
    }
    for (const [peer, payloads] of byPeer) this.sendFrames(peer, payloads);
  }

  private sendFrames(peer: bigint, payloads: Uint8Array[]): void {
    const stream = this.streams.get(peer);
    let total = 0;
    for (const payload of payloads) total += FRAME_HEADER_BYTES + payload.byteLength;
    const framed = new Uint8Array(total);
    const view = new DataView(framed.buffer);
    let at = 0;
    for (const payload of payloads) {
      view.setUint32(at, payload.byteLength, true);
      view.setUint8(at + 4, FRAME_TYPES.RAFT);
      framed.set(payload, at + FRAME_HEADER_BYTES);
      at += FRAME_HEADER_BYTES + payload.byteLength;
    }
    if (stream?.send(framed, payloads.length)) {
      this.stats.messagesSent += payloads.length;
      return;
    }
    this.stats.messagesDropped += payloads.length;
    this.options.handler.onUnreachable(peer);
  }

  private startSnapshot(message: Message): void {
    const peer = message.to;
    const url = this.peerUrls.get(peer)?.[0];
    if (!url || this.snapshotsInFlight.has(peer)) {
      this.options.handler.onSnapshotStatus(peer, false);
      return;
    }
    this.snapshotsInFlight.add(peer);
    const started = Date.now();
    const sizeBytes = message.snapshot?.data.byteLength ?? 0;
    this.options.logger.info(`sending a snapshot at index ${message.snapshot?.metadata.index} (${sizeBytes} bytes) to ${hex(peer)}`);
    sendSnapshot({
      url, selfId: this.options.selfId, clusterId: this.options.clusterId, message,
      localAddress: this.options.localAddress, tls: this.options.dialTls, limits: this.limits,
    }).then(
      () => {
        this.options.logger.info(`snapshot delivered to ${hex(peer)} in ${Date.now() - started} ms`);
        this.finishSnapshot(peer, true);
      },
      (error: unknown) => {
        this.options.logger.warn(`snapshot to ${hex(peer)} failed: ${(error as Error).message}`);
        this.finishSnapshot(peer, false);
      },
    );
  }

  private finishSnapshot(peer: bigint, delivered: boolean): void {
    this.snapshotsInFlight.delete(peer);
    if (!this.stopped) this.options.handler.onSnapshotStatus(peer, delivered);
  }

  /** Calls `method` on a peer; rejects at once when the stream to it is down, or after timeoutMs. */
  rpc(peer: bigint, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const stream = this.streams.get(peer);
    const id = this.nextRpcId++;
    if (!stream || !stream.sendRpc(encodeJsonWithId(id, { method, params }))) {
      return Promise.reject(new RpcError('CONCORD_E_PEER_UNAVAILABLE', `member ${hex(peer)} cannot be reached`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingRpcs.delete(id);
        reject(new RpcError('CONCORD_E_PEER_UNAVAILABLE', `member ${hex(peer)} did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingRpcs.set(id, { resolve, reject, timer, peer });
    });
  }

  private onRpcResponse(id: number, document: unknown): void {
    const pending = this.pendingRpcs.get(id);
    if (!pending) return; // timed out already
    this.pendingRpcs.delete(id);
    clearTimeout(pending.timer);
    const answer = document as { ok?: boolean; result?: unknown; error?: { code?: string; message?: string } };
    if (answer.ok === true) pending.resolve(answer.result);
    else pending.reject(new RpcError(String(answer.error?.code ?? 'CONCORD_E_PEER_UNAVAILABLE'), String(answer.error?.message ?? 'the peer failed')));
  }

  private failRpcsTo(peer: bigint, why: string): void {
    for (const [id, pending] of this.pendingRpcs) {
      if (pending.peer !== peer) continue;
      this.pendingRpcs.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new RpcError('CONCORD_E_PEER_UNAVAILABLE', why));
    }
  }

  private onRejected(peer: bigint, reason: RejectReason, text: string): void {
    if (reason === 'removed') {
      this.options.handler.onRemovedFromCluster(text);
      return;
    }
    const log = reason === 'foreign-cluster' || reason === 'protocol' ? this.options.logger.error : this.options.logger.warn;
    log.call(this.options.logger, `peer ${hex(peer)} refused this member (${reason}): ${text}`);
  }

  // --- inbound ---------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    let hello: Hello | undefined;
    let snapshot: SnapshotReceiver | undefined;
    const connection: PeerConnection = new PeerConnection(socket, (frame) => {
      if (!hello) {
        hello = this.onHello(connection, frame, remote);
        if (hello?.purpose === 'snapshot') snapshot = new SnapshotReceiver(hello.fromId, this.limits.maxSnapshotBytes);
        return;
      }
      if (hello.purpose === 'snapshot') this.onSnapshotFrame(connection, snapshot!, frame);
      else this.onStreamFrame(connection, hello.fromId, frame);
    }, this.limits.partialFrameTimeoutMs);
    this.inbound.add(connection);
    const handshakeTimer = setTimeout(() => {
      if (!hello) connection.close(`no HELLO within ${this.limits.handshakeTimeoutMs} ms`);
    }, this.limits.handshakeTimeoutMs);
    connection.onClose((reason) => {
      clearTimeout(handshakeTimer);
      this.inbound.delete(connection);
      if (!this.stopped && isProtocolProblem(reason)) {
        this.stats.protocolErrors++;
        this.options.logger.warn(`closed the peer connection from ${remote}: ${reason}`);
      }
    });
  }

  /** Checks a HELLO; answers it; returns it when the connection may go on. */
  private onHello(connection: PeerConnection, frame: Frame, remote: string): Hello | undefined {
    if (frame.type !== FRAME_TYPES.HELLO) throw new ProtocolError(`expected HELLO, got frame type ${frame.type}`);
    const hello = decodeHello(frame.payload);
    const refuse = (reason: RejectReason, text: string): undefined => {
      this.stats.connectionsRefused++;
      const log = reason === 'foreign-cluster' ? this.options.logger.error : this.options.logger.warn;
      log.call(this.options.logger, `refused a peer connection from ${remote}: ${text}`);
      connection.end(FRAME_TYPES.HELLO_REJECT, encodeReject(reason, text));
      return undefined;
    };
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      return refuse('protocol', `peer protocol version ${hello.protocolVersion}; this member speaks ${PROTOCOL_VERSION}: run the same Concord release on every member`);
    }
    if (hello.purpose === 'join') {
      connection.end(FRAME_TYPES.HELLO_OK, encodeJson(this.options.handler.onJoinRequest(hello.peerUrls)));
      return undefined;
    }
    if (hello.clusterId !== this.options.clusterId) {
      return refuse('foreign-cluster', `member ${hex(hello.fromId)} belongs to cluster ${hex(hello.clusterId)}, this member to ${hex(this.options.clusterId)}: ` +
        'it was started with another --initial-cluster or --initial-cluster-token, or its data dir is another cluster\'s');
    }
    if (hello.toId !== this.options.selfId) {
      return refuse('wrong-member', `the peer dialed member ${hex(hello.toId)}, but this is ${hex(this.options.selfId)}: its member list has a stale URL`);
    }
    if (hello.fromId === this.options.selfId) {
      // memberStatus() knows this member's own ID, so without this check a forged stream "from"
      // the receiver would be accepted and its Raft messages stepped as the member's own.
      return refuse('wrong-member', `the peer claims to be this member (${hex(hello.fromId)}): a member never dials itself; another process uses this member's ID (a copied data dir?)`);
    }
    const status = this.options.handler.memberStatus(hello.fromId);
    if (status === 'removed') return refuse('removed', `member ${hex(hello.fromId)} has been permanently removed from the cluster`);
    if (status === 'unknown') return refuse('unknown-member', `member ${hex(hello.fromId)} is not (yet) a member of this cluster`);
    connection.decoder.maxFrameBytes = this.limits.maxFrameBytes;
    connection.write(FRAME_TYPES.HELLO_OK, new Uint8Array(0));
    return hello;
  }

  private onStreamFrame(connection: PeerConnection, fromId: bigint, frame: Frame): void {
    if (frame.type === FRAME_TYPES.RAFT) {
      const message = decodeMessage(frame.payload);
      if (message.from !== fromId) throw new ProtocolError(`a message from ${hex(message.from)} on the stream of ${hex(fromId)}`);
      if (message.to !== this.options.selfId) throw new ProtocolError(`a message for ${hex(message.to)} reached ${hex(this.options.selfId)}`);
      if (message.type === 'MsgSnap') throw new ProtocolError('MsgSnap on a stream (snapshots have their own connection)');
      this.stats.messagesReceived++;
      this.options.handler.onMessage(message);
      return;
    }
    if (frame.type === FRAME_TYPES.RPC_REQUEST) {
      const { id, document } = decodeJsonWithId(frame.payload, 'RPC request');
      const { method, params } = (document ?? {}) as { method?: unknown; params?: unknown };
      if (typeof method !== 'string') throw new ProtocolError('an RPC request without a method name');
      const respond = (answer: unknown) => {
        try {
          connection.write(FRAME_TYPES.RPC_RESPONSE, encodeJsonWithId(id, answer));
        } catch (error) {
          this.options.logger.error(`cannot answer ${method} from ${hex(fromId)}: ${(error as Error).message}`);
          connection.close('an RPC answer could not be encoded');
        }
      };
      // Run on a later turn, so a handler that throws at once is answered like one that rejects.
      Promise.resolve().then(() => this.options.handler.onRpc(fromId, method, params)).then(
        (result) => respond({ ok: true, result }),
        (error: unknown) => respond({
          ok: false,
          error: { code: String((error as { code?: unknown }).code ?? 'CONCORD_E_PEER_UNAVAILABLE'), message: (error as Error).message },
        }),
      );
      return;
    }
    throw new ProtocolError(`unexpected frame type ${frame.type} on an inbound stream`);
  }

  private onSnapshotFrame(connection: PeerConnection, receiver: SnapshotReceiver, frame: Frame): void {
    const message = receiver.onFrame(frame);
    if (!message) return;
    if (message.to !== this.options.selfId) throw new ProtocolError(`a snapshot for ${hex(message.to)} reached ${hex(this.options.selfId)}`);
    this.options.logger.info(`received a snapshot at index ${message.snapshot!.metadata.index} (${message.snapshot!.data.byteLength} bytes) from ${hex(message.from)}`);
    this.stats.messagesReceived++;
    this.options.handler.onMessage(message);
    connection.end(FRAME_TYPES.SNAP_ACK, encodeAck(true, ''));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const stream of this.streams.values()) stream.stop();
    this.streams.clear();
    for (const [timer, stream] of this.retiredStreams) {
      clearTimeout(timer);
      stream.stop();
    }
    this.retiredStreams.clear();
    for (const connection of this.inbound) connection.close('transport stopped');
    for (const pending of this.pendingRpcs.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RpcError('CONCORD_E_PEER_UNAVAILABLE', 'the member is shutting down'));
    }
    this.pendingRpcs.clear();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  /** Messages dropped per peer since start (the stream was down or its queue full). */
  droppedMessages(peer: bigint): number {
    return this.streams.get(peer)?.droppedMessages ?? 0;
  }
}

/** Close reasons that mean the peer broke the protocol, as opposed to an ordinary disconnect. */
function isProtocolProblem(reason: string): boolean {
  return !/connection closed|transport stopped|ECONNRESET|EPIPE|already closed|snapshot stream finished/.test(reason);
}
