// Streaming a Raft snapshot to a peer on a connection of its own, so that a large snapshot never
// holds up the heartbeats and appends on the peer stream:
//
//   dialer                              receiver
//   HELLO (purpose snapshot)       ->
//                                  <-   HELLO_OK
//   SNAP_HEADER (MsgSnap, size)    ->
//   SNAP_CHUNK x n                 ->   (each written only once the socket has drained)
//   SNAP_DONE (CRC-32C of data)    ->
//                                  <-   SNAP_ACK (1 = handed to Raft, 0 + reason)
//
// The sender reports the outcome to Raft (MsgSnapStatus) once the receiver has acknowledged it.

import { crc32c } from '@node-rs/crc32';
import type { Message } from '../consensus/types.ts';
import { ByteReader, ByteWriter } from '../storage/binary-codec.ts';
import type { Frame } from './frame.ts';
import { FRAME_TYPES, PROTOCOL_VERSION, ProtocolError, decodeReject, decoding, encodeHello } from './frame.ts';
import { decodeMessage, encodeMessage } from './message-codec.ts';
import { PeerConnection, dial } from './peer-connection.ts';
import type { PeerDialTls } from './peer-connection.ts';
import type { TransportLimits } from './transport-options.ts';

export interface SnapshotSendOptions {
  url: URL;
  selfId: bigint;
  clusterId: bigint;
  message: Message;
  localAddress?: string;
  tls?: PeerDialTls;
  limits: TransportLimits;
}

/** Streams the snapshot; resolves once the receiver acknowledged it, rejects with the reason otherwise. */
export async function sendSnapshot(options: SnapshotSendOptions): Promise<void> {
  const { message, limits } = options;
  const data = message.snapshot!.data;
  const socket = await dial({ url: options.url, localAddress: options.localAddress, tls: options.tls, connectTimeoutMs: limits.dialTimeoutMs });
  return new Promise<void>((resolve, reject) => {
    let accepted = false;
    let finished = false;
    const connection: PeerConnection = new PeerConnection(socket, (frame) => onFrame(frame), limits.partialFrameTimeoutMs);
    const timer = setTimeout(() => connection.close(`not acknowledged within ${limits.snapshotTimeoutMs} ms`), limits.snapshotTimeoutMs);
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      connection.close('snapshot stream finished');
      if (error) reject(error);
      else resolve();
    };
    connection.onClose((reason) => finish(new Error(`snapshot stream closed: ${reason}`)));
    const onFrame = (frame: Frame) => {
      if (frame.type === FRAME_TYPES.HELLO_OK && !accepted) {
        accepted = true;
        void streamSnapshotBody(connection, message, data, limits.snapshotChunkBytes).catch((error: unknown) => finish(error as Error));
      } else if (frame.type === FRAME_TYPES.HELLO_REJECT) {
        const { reason, text } = decodeReject(frame.payload);
        finish(new Error(`peer refused the snapshot (${reason}): ${text}`));
      } else if (frame.type === FRAME_TYPES.SNAP_ACK && accepted) {
        const { ok, reason } = decodeAck(frame.payload);
        finish(ok ? undefined : new Error(`peer did not take the snapshot: ${reason}`));
      } else {
        throw new ProtocolError(`unexpected frame type ${frame.type} on a snapshot stream`);
      }
    };
    connection.write(FRAME_TYPES.HELLO, encodeHello({
      protocolVersion: PROTOCOL_VERSION, purpose: 'snapshot', clusterId: options.clusterId,
      fromId: options.selfId, toId: message.to, peerUrls: [],
    }));
  });
}

/** What the body is written to: a peer connection, or a stand-in in tests. */
export type SnapshotBodySink = Pick<PeerConnection, 'isClosed' | 'write' | 'drained'>;

/**
 * Writes the header, the chunks and the checksum. Backpressure: after a write the socket reports
 * as over its high-water mark, the next chunk waits until it drains, so a snapshot of any size
 * holds at most about one chunk beyond the socket's buffer in memory.
 */
export async function streamSnapshotBody(connection: SnapshotBodySink, message: Message, data: Uint8Array, chunkBytes: number): Promise<void> {
  const header = new ByteWriter(256).u53(data.byteLength).raw(encodeMessage(message)).finish();
  connection.write(FRAME_TYPES.SNAP_HEADER, header);
  for (let at = 0; at < data.byteLength; at += chunkBytes) {
    if (connection.isClosed) return;
    if (!connection.write(FRAME_TYPES.SNAP_CHUNK, data.subarray(at, Math.min(at + chunkBytes, data.byteLength)))) await connection.drained();
  }
  connection.write(FRAME_TYPES.SNAP_DONE, new ByteWriter(4).u32(crc32c(Buffer.from(data.buffer, data.byteOffset, data.byteLength))).finish());
}

export function encodeAck(ok: boolean, reason: string): Uint8Array {
  return new ByteWriter(32).u8(ok ? 1 : 0).raw(new TextEncoder().encode(reason)).finish();
}

function decodeAck(payload: Uint8Array): { ok: boolean; reason: string } {
  return decoding('SNAP_ACK', () => {
    const reader = new ByteReader(payload);
    const ok = reader.u8('ok') === 1;
    return { ok, reason: new TextDecoder().decode(reader.raw(reader.remainingBytes, 'reason')) };
  });
}

/**
 * The receiving side: collects one snapshot's chunks (bounded by the size the header announced,
 * itself bounded by maxSnapshotBytes) and checks its length and checksum before handing it on.
 */
export class SnapshotReceiver {
  private readonly fromId: bigint;
  private readonly maxSnapshotBytes: number;
  private message: Message | undefined;
  private expectedBytes = 0;
  private receivedBytes = 0;
  private readonly chunks: Uint8Array[] = [];

  constructor(fromId: bigint, maxSnapshotBytes: number) {
    this.fromId = fromId;
    this.maxSnapshotBytes = maxSnapshotBytes;
  }

  /** Returns the complete MsgSnap (with its data) on SNAP_DONE, undefined before. */
  onFrame(frame: Frame): Message | undefined {
    switch (frame.type) {
      case FRAME_TYPES.SNAP_HEADER:
        this.begin(frame.payload);
        return undefined;
      case FRAME_TYPES.SNAP_CHUNK:
        if (!this.message) throw new ProtocolError('a snapshot chunk before the header');
        this.receivedBytes += frame.payload.byteLength;
        if (this.receivedBytes > this.expectedBytes) throw new ProtocolError(`more snapshot bytes than the ${this.expectedBytes} announced`);
        this.chunks.push(frame.payload.slice());
        return undefined;
      case FRAME_TYPES.SNAP_DONE:
        return this.complete(frame.payload);
      default:
        throw new ProtocolError(`unexpected frame type ${frame.type} on a snapshot stream`);
    }
  }

  private begin(payload: Uint8Array): void {
    if (this.message) throw new ProtocolError('a second snapshot header');
    const { sizeBytes, message } = decoding('SNAP_HEADER', () => {
      const reader = new ByteReader(payload);
      const sizeBytes = reader.u53('snapshot size');
      return { sizeBytes, message: decodeMessage(reader.raw(reader.remainingBytes, 'message')) };
    });
    if (message.type !== 'MsgSnap') throw new ProtocolError(`a snapshot stream carries ${message.type}, not MsgSnap`);
    if (message.from !== this.fromId) throw new ProtocolError(`a snapshot from member ${message.from.toString(16)} on a stream of ${this.fromId.toString(16)}`);
    if (sizeBytes > this.maxSnapshotBytes) throw new ProtocolError(`a snapshot of ${sizeBytes} bytes is over the limit of ${this.maxSnapshotBytes}`);
    this.message = message;
    this.expectedBytes = sizeBytes;
  }

  private complete(payload: Uint8Array): Message {
    const message = this.message;
    if (!message) throw new ProtocolError('SNAP_DONE before the header');
    if (this.receivedBytes !== this.expectedBytes) throw new ProtocolError(`snapshot has ${this.receivedBytes} bytes, ${this.expectedBytes} were announced`);
    const data = Buffer.concat(this.chunks);
    const expectedCrc = decoding('SNAP_DONE', () => new ByteReader(payload).u32('checksum'));
    if (crc32c(data) !== expectedCrc) throw new ProtocolError('snapshot data fails its checksum');
    return { ...message, snapshot: { metadata: message.snapshot!.metadata, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) } };
  }
}
