// HTTP/2's frame layer (RFC 9113 §4, §6): the numbers on the wire, and the writing of frames. The
// numbers are the protocol's; the names are the RFC's, so that a reader can look each one up.

/** Every frame starts with a 9-byte header: 24-bit length, type, flags, 31-bit stream ID. */
export const FRAME_HEADER_BYTES = 9;

/** What a client sends first (RFC 9113 §3.4), before its SETTINGS frame. */
export const CLIENT_PREFACE = new Uint8Array([...'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'].map((char) => char.charCodeAt(0)));

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FrameFlag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The protocol's defaults, before a SETTINGS frame says otherwise (RFC 9113 §6.5.2). */
export const DEFAULT_WINDOW_BYTES = 65_535;
export const DEFAULT_MAX_FRAME_BYTES = 16_384;
export const MAX_ALLOWED_FRAME_BYTES = 16_777_215;
/** A flow-control window may never pass this (RFC 9113 §6.9.1). */
export const MAX_WINDOW_BYTES = 2_147_483_647;

/** Writes a frame header into `into` at `offset`. */
export function writeFrameHeader(into: Uint8Array, offset: number, length: number, type: number, flags: number, streamId: number): void {
  into[offset] = (length >>> 16) & 0xff;
  into[offset + 1] = (length >>> 8) & 0xff;
  into[offset + 2] = length & 0xff;
  into[offset + 3] = type;
  into[offset + 4] = flags;
  writeUint32(into, offset + 5, streamId & 0x7fffffff);
}

/** A whole frame: header and payload in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = EMPTY): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  writeFrameHeader(bytes, 0, payload.byteLength, type, flags, streamId);
  bytes.set(payload, FRAME_HEADER_BYTES);
  return bytes;
}

export function settingsFrame(settings: readonly (readonly [number, number])[]): Uint8Array {
  const payload = new Uint8Array(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload[i * 6] = id >>> 8;
    payload[i * 6 + 1] = id & 0xff;
    writeUint32(payload, i * 6 + 2, value);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export function windowUpdateFrame(streamId: number, increment: number): Uint8Array {
  const payload = new Uint8Array(4);
  writeUint32(payload, 0, increment);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

export function rstStreamFrame(streamId: number, errorCode: number): Uint8Array {
  const payload = new Uint8Array(4);
  writeUint32(payload, 0, errorCode);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

export function goAwayFrame(lastStreamId: number, errorCode: number, debug: string): Uint8Array {
  const text = [...debug].map((char) => char.charCodeAt(0) & 0x7f);
  const payload = new Uint8Array(8 + text.length);
  writeUint32(payload, 0, lastStreamId);
  writeUint32(payload, 4, errorCode);
  payload.set(text, 8);
  return frame(FrameType.GOAWAY, 0, 0, payload);
}

export function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

export function writeUint32(into: Uint8Array, offset: number, value: number): void {
  into[offset] = (value >>> 24) & 0xff;
  into[offset + 1] = (value >>> 16) & 0xff;
  into[offset + 2] = (value >>> 8) & 0xff;
  into[offset + 3] = value & 0xff;
}

const EMPTY = new Uint8Array(0);
