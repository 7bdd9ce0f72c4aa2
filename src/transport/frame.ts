// The peer protocol's framing: every frame is
//
//   u32 payload length (little-endian) | u8 frame type | payload
//
// A connection starts with a HELLO from the dialing member (its protocol version, purpose, cluster
// and member IDs) and an answer (HELLO_OK or HELLO_REJECT with a reason), then carries frames of its
// purpose: RAFT messages and RPCs on a member's stream to a peer, SNAP_* frames on a connection
// that streams one snapshot, nothing more on a join request. Lengths are checked before anything is
// buffered, so a hostile length prefix costs nothing but the connection.

import { ByteReader, ByteWriter, DecodeError } from '../storage/binary-codec.ts';

export const PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 5;

export const FRAME_TYPES = {
  HELLO: 1,
  HELLO_OK: 2,
  HELLO_REJECT: 3,
  RAFT: 4,
  SNAP_HEADER: 5,
  SNAP_CHUNK: 6,
  SNAP_DONE: 7,
  SNAP_ACK: 8,
  RPC_REQUEST: 9,
  RPC_RESPONSE: 10,
} as const;

export type FrameType = (typeof FRAME_TYPES)[keyof typeof FRAME_TYPES];
const KNOWN_FRAME_TYPES = new Set<number>(Object.values(FRAME_TYPES));

export interface Frame {
  type: FrameType;
  payload: Uint8Array;
}

/** Why a peer connection is closed: the peer sent bytes that are not the protocol. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  readonly code = 'CONCORD_E_PEER_PROTOCOL';
}

export function encodeFrame(type: FrameType, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.byteLength, true);
  view.setUint8(4, type);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Cuts a byte stream into frames. Bytes arrive in arbitrary pieces; a frame is handed out once it is
 * whole. A length above maxFrameBytes or an unknown type is a ProtocolError: the caller closes the
 * connection (the stream cannot be resynchronised).
 */
export class FrameDecoder {
  /** The largest payload accepted; it can be lowered, e.g. until the handshake is done. */
  maxFrameBytes: number;
  private chunks: Uint8Array[] = [];
  private bufferedBytes = 0;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Adds bytes and returns every frame they complete, in order. */
  push(chunk: Uint8Array): Frame[] {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.byteLength;
    const frames: Frame[] = [];
    for (;;) {
      if (this.bufferedBytes < FRAME_HEADER_BYTES) break;
      const header = this.peek(FRAME_HEADER_BYTES);
      const view = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES);
      const length = view.getUint32(0, true);
      const type = view.getUint8(4);
      if (!KNOWN_FRAME_TYPES.has(type)) throw new ProtocolError(`unknown frame type ${type}`);
      if (length > this.maxFrameBytes) {
        throw new ProtocolError(`a frame of ${length} bytes is over the limit of ${this.maxFrameBytes} bytes`);
      }
      if (this.bufferedBytes < FRAME_HEADER_BYTES + length) break;
      const whole = this.take(FRAME_HEADER_BYTES + length);
      frames.push({ type: type as FrameType, payload: whole.subarray(FRAME_HEADER_BYTES) });
    }
    return frames;
  }

  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  private peek(sizeBytes: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.byteLength >= sizeBytes) return first;
    return this.concat(sizeBytes);
  }

  private take(sizeBytes: number): Uint8Array {
    const first = this.chunks[0]!;
    let taken: Uint8Array;
    if (first.byteLength >= sizeBytes) {
      taken = first.subarray(0, sizeBytes);
      if (first.byteLength === sizeBytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(sizeBytes);
    } else {
      taken = this.concat(sizeBytes);
      let left = sizeBytes;
      while (left > 0) {
        const chunk = this.chunks[0]!;
        if (chunk.byteLength <= left) {
          left -= chunk.byteLength;
          this.chunks.shift();
        } else {
          this.chunks[0] = chunk.subarray(left);
          left = 0;
        }
      }
    }
    this.bufferedBytes -= sizeBytes;
    return taken;
  }

  /** The first sizeBytes of the buffered chunks as one array (copied), leaving the chunks as they are. */
  private concat(sizeBytes: number): Uint8Array {
    const joined = new Uint8Array(sizeBytes);
    let at = 0;
    for (const chunk of this.chunks) {
      const part = chunk.subarray(0, Math.min(chunk.byteLength, sizeBytes - at));
      joined.set(part, at);
      at += part.byteLength;
      if (at === sizeBytes) break;
    }
    return joined;
  }
}

// --- HELLO -------------------------------------------------------------------------------------

export type ConnectionPurpose = 'stream' | 'snapshot' | 'join';
const PURPOSE_CODES: Record<ConnectionPurpose, number> = { stream: 1, snapshot: 2, join: 3 };
const PURPOSES_BY_CODE = new Map<number, ConnectionPurpose>(
  (Object.entries(PURPOSE_CODES) as [ConnectionPurpose, number][]).map(([purpose, code]) => [code, purpose]),
);

export interface Hello {
  protocolVersion: number;
  purpose: ConnectionPurpose;
  /** 0 on a join request: the joining member does not know the cluster yet. */
  clusterId: bigint;
  fromId: bigint;
  toId: bigint;
  /** On a join request: the joining member's advertised peer URLs, so the cluster can find its entry. */
  peerUrls: string[];
}

export function encodeHello(hello: Hello): Uint8Array {
  const writer = new ByteWriter(64);
  writer.u8(hello.protocolVersion).u8(PURPOSE_CODES[hello.purpose]).u64(hello.clusterId).u64(hello.fromId).u64(hello.toId);
  writeStrings(writer, hello.peerUrls);
  return writer.finish();
}

export function decodeHello(payload: Uint8Array): Hello {
  return decoding('HELLO', () => {
    const reader = new ByteReader(payload);
    const protocolVersion = reader.u8('protocol version');
    const purposeCode = reader.u8('purpose');
    const purpose = PURPOSES_BY_CODE.get(purposeCode);
    if (!purpose) throw new ProtocolError(`HELLO names unknown purpose ${purposeCode}`);
    const hello: Hello = {
      protocolVersion,
      purpose,
      clusterId: reader.u64('cluster id'),
      fromId: reader.u64('from id'),
      toId: reader.u64('to id'),
      peerUrls: readStrings(reader, 'peer URLs', MAX_PEER_URLS),
    };
    reader.expectEnd('HELLO');
    return hello;
  });
}

/** Why a HELLO was refused; the dialer acts on the kind (a removed member stops, others retry). */
export type RejectReason = 'protocol' | 'foreign-cluster' | 'wrong-member' | 'unknown-member' | 'removed' | 'not-ready';
const REJECT_CODES: Record<RejectReason, number> = {
  'protocol': 1, 'foreign-cluster': 2, 'wrong-member': 3, 'unknown-member': 4, 'removed': 5, 'not-ready': 6,
};
const REJECTS_BY_CODE = new Map<number, RejectReason>(
  (Object.entries(REJECT_CODES) as [RejectReason, number][]).map(([reason, code]) => [code, reason]),
);

export function encodeReject(reason: RejectReason, text: string): Uint8Array {
  return new ByteWriter(64).u8(REJECT_CODES[reason]).raw(new TextEncoder().encode(text)).finish();
}

export function decodeReject(payload: Uint8Array): { reason: RejectReason; text: string } {
  return decoding('HELLO_REJECT', () => {
    const reader = new ByteReader(payload);
    const code = reader.u8('reason');
    const reason = REJECTS_BY_CODE.get(code) ?? 'protocol';
    return { reason, text: new TextDecoder().decode(reader.raw(reader.remainingBytes, 'text')) };
  });
}

// --- JSON payloads (join answers, RPCs) ---------------------------------------------------------

/** A frame payload holding a request id and a JSON document (RPC requests and responses). */
export function encodeJsonWithId(id: number, document: unknown): Uint8Array {
  return new ByteWriter(128).u53(id).raw(new TextEncoder().encode(JSON.stringify(document, bigintReplacer))).finish();
}

export function decodeJsonWithId(payload: Uint8Array, what: string): { id: number; document: unknown } {
  return decoding(what, () => {
    const reader = new ByteReader(payload);
    const id = reader.u53('request id');
    return { id, document: parseJson(reader.raw(reader.remainingBytes, 'document'), what) };
  });
}

export function encodeJson(document: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(document, bigintReplacer));
}

export function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ProtocolError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

/** 64-bit IDs travel in JSON as decimal strings. */
function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

// --- helpers -------------------------------------------------------------------------------------

const MAX_PEER_URLS = 16;
const MAX_STRING_BYTES = 1024;

function writeStrings(writer: ByteWriter, strings: readonly string[]): void {
  writer.u32(strings.length);
  for (const text of strings) {
    const bytes = new TextEncoder().encode(text);
    writer.u32(bytes.byteLength).raw(bytes);
  }
}

function readStrings(reader: ByteReader, what: string, maxCount: number): string[] {
  const count = reader.u32(`${what} count`);
  if (count > maxCount) throw new ProtocolError(`${what}: ${count} entries, at most ${maxCount}`);
  const strings: string[] = [];
  for (let i = 0; i < count; i++) {
    const length = reader.u32(`${what} length`);
    if (length > MAX_STRING_BYTES) throw new ProtocolError(`${what}: an entry of ${length} bytes, at most ${MAX_STRING_BYTES}`);
    strings.push(new TextDecoder().decode(reader.raw(length, what)));
  }
  return strings;
}

/** Runs a decoder, turning a short or malformed payload into a ProtocolError naming the frame. */
export function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    if (error instanceof DecodeError || error instanceof RangeError) throw new ProtocolError(`${what}: ${error.message}`);
    throw error;
  }
}
