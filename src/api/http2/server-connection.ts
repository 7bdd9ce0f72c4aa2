// The server side of one HTTP/2 connection (RFC 9113), written for gRPC's unary calls: bytes from
// the client go in (receive), frames for the client come out through the transport, once per
// burst of work (the transport's defer), so that the answers made in one turn leave in one write.
//
// Why not node:http2: for a small unary call, node:http2 (nghttp2 underneath, a stream object, an
// event emitter and a headers object per call, and the trailers in a later write) costs more CPU
// than the member spends deciding the call; at 64+ clients the member's CPU per write is what
// limits its writes/s. Here a call is a stream record, the header list decoded against a cached
// table, and three frames out in the connection's next write.
//
// What it does of the protocol: the preface and SETTINGS (acknowledged, the client's applied), PING
// answers, flow control both ways (the windows here are replenished as consumers take data; data
// out waits in its stream for the client's windows), header blocks over CONTINUATION, request
// header validation as RFC 9113 §8 asks, RST_STREAM both ways, GOAWAY both ways. Every protocol
// violation is a connection error (GOAWAY with the RFC's code and a text saying what was wrong)
// or a stream error (RST_STREAM), as RFC 9113 §5.4 assigns them. No server push, no priorities
// (PRIORITY frames are read and ignored, as RFC 9113 allows).
//
// Named limits: maxConcurrentStreams (more are refused with REFUSED_STREAM), the header list and
// header block sizes (and CONTINUATION frames per block), the frame size, SETTINGS entries per
// frame, the receive windows (which bound what a client may have sent that no consumer has taken
// yet), the response bytes waiting for the client's windows, and budgets for what a client may
// make this side do cheaply and often: stream resets (rapid reset) and SETTINGS frames. Past a
// limit that only a hostile or broken client reaches, the connection ends with GOAWAY
// ENHANCE_YOUR_CALM.
//
// Pure: no node: module; the transport and the clock are passed in.

import { HpackDecoder, HpackError } from './hpack-decoder.ts';
import {
  CLIENT_PREFACE, DEFAULT_MAX_FRAME_BYTES, DEFAULT_WINDOW_BYTES, ErrorCode, FRAME_HEADER_BYTES, FrameFlag, FrameType,
  MAX_ALLOWED_FRAME_BYTES, MAX_WINDOW_BYTES, Setting, frame, goAwayFrame, readUint32, rstStreamFrame, settingsFrame,
  windowUpdateFrame,
} from './frame.ts';
import { FrameOutput } from './frame-output.ts';
import { ServerStream } from './server-stream.ts';
import type { StreamHost } from './server-stream.ts';
import { RateBudget } from './rate-budget.ts';

export interface ConnectionTransport {
  /** Writes frames to the client. The bytes are not written over afterwards: they may be queued as they are. */
  write(bytes: Uint8Array): void;
  /** Closes the connection once what was written has gone. */
  end(): void;
  /** Runs `work` once the current synchronous work is done (queueMicrotask): one write per burst. */
  defer(work: () => void): void;
}

export interface ConnectionHandler {
  /** A request stream with valid headers: set its consumer now (before returning). */
  onStream(stream: ServerStream): void;
  /** A request whose header list is over maxHeaderListBytes: answer or reset it now. */
  onHeaderListTooLarge(stream: ServerStream, sizeLimitBytes: number): void;
  /** The connection failed (a protocol error, by either side, or a bug here): for the log. */
  onConnectionError(errorCode: number, message: string, byPeer: boolean): void;
}

export interface ServerConnectionOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams over it are refused (REFUSED_STREAM, the client may retry). */
  maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: request bytes a stream may have in flight before its consumer takes them. */
  streamWindowBytes: number;
  /** The connection's receive window: request bytes in flight on all streams together. */
  connectionWindowBytes: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the largest request header list (RFC size) answered. */
  maxHeaderListBytes: number;
  /** Response bytes waiting for the client's windows, on all streams together. */
  maxWaitingBytes: number;
  /** The clock of the rate budgets. */
  nowMs: () => number;
}

/** HPACK's default dynamic table size; advertised as is. */
const HEADER_TABLE_BYTES = 4_096;
/** Compressed header block bytes (HEADERS + CONTINUATION) held before the block is complete, as a multiple of the list limit. */
const HEADER_BLOCK_LIMIT_FACTOR = 2;
/** CONTINUATION frames in one header block (a client needs them only past the 16 KiB frame size). */
const MAX_CONTINUATION_FRAMES = 64;
/** Entries in one SETTINGS frame (nghttp2's limit; HTTP/2 defines six settings). */
const MAX_SETTINGS_ENTRIES = 32;
/** Streams a client may reset, or make this side reset, before they complete: nghttp2's burst and rate. */
const STREAM_RESETS_BURST = 1_000;
const STREAM_RESETS_PER_SECOND = 33;
/** SETTINGS frames a client may send after the preface's (each one is acknowledged and may touch every stream). */
const SETTINGS_BURST = 100;
const SETTINGS_PER_SECOND = 10;
/** Headers that HTTP/2 forbids in a request (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** The request pseudo-headers, each with its bit in the mask of those seen (no set is built per request). */
const REQUEST_PSEUDO_HEADER_BITS = new Map([[':method', 1], [':scheme', 2], [':path', 4], [':authority', 8]]);

/** A protocol violation that ends the connection. */
class ConnectionError extends Error {
  readonly errorCode: number;

  constructor(errorCode: number, message: string) {
    super(message);
    this.errorCode = errorCode;
  }
}

export class ServerConnection implements StreamHost {
  private readonly transport: ConnectionTransport;
  private readonly handler: ConnectionHandler;
  private readonly options: ServerConnectionOptions;
  private readonly decoder: HpackDecoder;
  private readonly streams = new Map<number, ServerStream>();
  /** Streams with data waiting for the connection's window. */
  private readonly blocked = new Set<ServerStream>();
  private readonly resetBudget: RateBudget;
  private readonly settingsBudget: RateBudget;
  private readonly output = new FrameOutput();
  private flushScheduled = false;
  private readonly flushNow = () => this.flush();
  /** The reads that hold an incomplete frame (or preface), kept until it is whole. */
  private partial: Uint8Array[] = [];
  private partialBytes = 0;
  /** Bytes the incomplete frame needs in all (its header first, then its whole length). */
  private partialNeeds = 0;
  private waitingBytes = 0;
  private prefaceSeen = false;
  private firstSettingsSeen = false;
  /** A header block that continues in CONTINUATION frames. */
  private continuation: { streamId: number; endStream: boolean; parts: Uint8Array[]; bytes: number; frames: number } | undefined;
  private lastStreamId = 0;
  private peerInitialWindow = DEFAULT_WINDOW_BYTES;
  private peerMaxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  private sendWindow = DEFAULT_WINDOW_BYTES;
  private receiveWindow: number;
  private unacknowledgedBytes = 0;
  private peerGoingAway = false;
  private ended = false;

  constructor(transport: ConnectionTransport, handler: ConnectionHandler, options: ServerConnectionOptions) {
    this.transport = transport;
    this.handler = handler;
    this.options = options;
    this.decoder = new HpackDecoder({ maxTableBytes: HEADER_TABLE_BYTES, maxHeaderListBytes: options.maxHeaderListBytes });
    this.receiveWindow = options.connectionWindowBytes;
    this.resetBudget = new RateBudget({ burst: STREAM_RESETS_BURST, perSecond: STREAM_RESETS_PER_SECOND, nowMs: options.nowMs });
    // One more than the burst: the preface's SETTINGS comes out of it too.
    this.settingsBudget = new RateBudget({ burst: SETTINGS_BURST + 1, perSecond: SETTINGS_PER_SECOND, nowMs: options.nowMs });
    this.push(settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, options.streamWindowBytes],
      [Setting.MAX_HEADER_LIST_SIZE, options.maxHeaderListBytes],
    ]));
    if (options.connectionWindowBytes > DEFAULT_WINDOW_BYTES) {
      this.push(windowUpdateFrame(0, options.connectionWindowBytes - DEFAULT_WINDOW_BYTES));
    }
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Bytes from the client. */
  receive(chunk: Uint8Array): void {
    if (this.ended) return;
    let bytes = chunk;
    if (this.partialBytes > 0) {
      // An incomplete frame waits for the reads that complete it, joined once, not at every read.
      this.partial.push(chunk);
      this.partialBytes += chunk.byteLength;
      if (this.partialBytes < this.partialNeeds) return;
      bytes = concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
    }
    try {
      const offset = this.readFrames(bytes);
      if (offset < bytes.byteLength && !this.ended) {
        const rest = bytes.subarray(offset);
        this.partial = [rest];
        this.partialBytes = rest.byteLength;
        this.partialNeeds = bytesNeeded(rest, this.prefaceSeen);
      }
    } catch (error) {
      if (error instanceof ConnectionError) this.fail(error.errorCode, error.message, false);
      else if (error instanceof HpackError) this.fail(ErrorCode.COMPRESSION_ERROR, error.message, false);
      // A bug here (or in a consumer) ends this connection, not the member.
      else this.fail(ErrorCode.INTERNAL_ERROR, `internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`, false);
    }
  }

  /** The client's socket closed or failed: every open stream is gone. */
  destroy(message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.closeAllStreams(ErrorCode.CANCEL, message);
  }

  /** Stops taking new streams, lets open ones finish, and tells the client (GOAWAY NO_ERROR). */
  goAway(): void {
    if (this.ended) return;
    this.push(goAwayFrame(this.lastStreamId, ErrorCode.NO_ERROR, 'server shutting down'));
    this.peerGoingAway = true;
    if (this.streams.size === 0) this.end();
  }

  // ---- reading -------------------------------------------------------------------------------

  /** Reads every whole frame in `bytes`; returns where the incomplete rest starts. */
  private readFrames(bytes: Uint8Array): number {
    let offset = 0;
    if (!this.prefaceSeen) {
      if (bytes.byteLength < CLIENT_PREFACE.byteLength) {
        checkPrefacePrefix(bytes, bytes.byteLength);
        return 0;
      }
      checkPrefacePrefix(bytes, CLIENT_PREFACE.byteLength);
      this.prefaceSeen = true;
      offset = CLIENT_PREFACE.byteLength;
    }
    while (bytes.byteLength - offset >= FRAME_HEADER_BYTES && !this.ended) {
      const length = (bytes[offset]! << 16) | (bytes[offset + 1]! << 8) | bytes[offset + 2]!;
      if (length > DEFAULT_MAX_FRAME_BYTES) {
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `a frame of ${length} bytes is over SETTINGS_MAX_FRAME_SIZE ${DEFAULT_MAX_FRAME_BYTES}`);
      }
      const start = offset + FRAME_HEADER_BYTES;
      if (bytes.byteLength - start < length) break;
      const type = bytes[offset + 3]!;
      const flags = bytes[offset + 4]!;
      const streamId = readUint32(bytes, offset + 5) & 0x7fffffff;
      this.onFrame(type, flags, streamId, bytes.subarray(start, start + length));
      offset = start + length;
    }
    return offset;
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (this.continuation !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.continuation.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `a header block for stream ${this.continuation.streamId} was interrupted by a frame of type ${type}`);
    }
    if (!this.firstSettingsSeen) {
      if (type !== FrameType.SETTINGS || (flags & FrameFlag.ACK) !== 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the client preface must be followed by a SETTINGS frame');
      }
      this.firstSettingsSeen = true;
    }
    switch (type) {
      case FrameType.DATA: return this.onData(flags, streamId, payload);
      case FrameType.HEADERS: return this.onHeaders(flags, streamId, payload);
      case FrameType.PRIORITY: return this.onPriority(streamId, payload);
      case FrameType.RST_STREAM: return this.onRstStream(streamId, payload);
      case FrameType.SETTINGS: return this.onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE: throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a client may not send PUSH_PROMISE');
      case FrameType.PING: return this.onPing(flags, streamId, payload);
      case FrameType.GOAWAY: return this.onGoAway(streamId, payload);
      case FrameType.WINDOW_UPDATE: return this.onWindowUpdate(streamId, payload);
      case FrameType.CONTINUATION: return this.onContinuation(flags, streamId, payload);
      default: return undefined; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onData(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const length = payload.byteLength;
    if (length > this.receiveWindow) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `DATA of ${length} bytes is over the connection's window (${this.receiveWindow})`);
    }
    this.receiveWindow -= length;
    const data = unpad(flags, payload, 'DATA');
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on stream ${streamId}, which was never opened`);
      // A stream this side has closed or reset: the data is dropped, the connection's window kept.
      this.acknowledgeConnection(length);
      return;
    }
    if (stream.remoteEnded) {
      this.acknowledgeConnection(length);
      this.resetForClientError(stream, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (length > stream.receiveWindow) {
      this.acknowledgeConnection(length);
      this.resetForClientError(stream, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    stream.receiveWindow -= length;
    const padding = length - data.byteLength;
    if (padding > 0) this.acknowledgeData(stream, padding);
    if (data.byteLength > 0) {
      stream.deliveredBytes += data.byteLength;
      stream.consumer?.onData(data);
      if (!stream.manualFlowControl) stream.acknowledge(data.byteLength);
    }
    if ((flags & FrameFlag.END_STREAM) !== 0 && !stream.closed) stream.remoteEnd();
  }

  private onHeaders(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let block = unpad(flags, payload, 'HEADERS');
    if ((flags & FrameFlag.PRIORITY) !== 0) {
      if (block.byteLength < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its priority fields');
      block = block.subarray(5);
    }
    const endStream = (flags & FrameFlag.END_STREAM) !== 0;
    if ((flags & FrameFlag.END_HEADERS) !== 0) {
      this.onHeaderBlock(streamId, endStream, block);
      return;
    }
    this.continuation = { streamId, endStream, parts: [block.slice()], bytes: block.byteLength, frames: 1 };
    this.checkHeaderBlockSize(this.continuation);
  }

  private onContinuation(flags: number, streamId: number, payload: Uint8Array): void {
    const continuation = this.continuation;
    if (continuation === undefined) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `CONTINUATION on stream ${streamId} without a HEADERS before it`);
    if (payload.byteLength > 0) continuation.parts.push(payload.slice());
    continuation.bytes += payload.byteLength;
    continuation.frames++;
    this.checkHeaderBlockSize(continuation);
    if ((flags & FrameFlag.END_HEADERS) === 0) return;
    this.continuation = undefined;
    this.onHeaderBlock(streamId, continuation.endStream, concat(continuation.parts, continuation.bytes));
  }

  private checkHeaderBlockSize(block: { bytes: number; frames: number }): void {
    const limit = this.options.maxHeaderListBytes * HEADER_BLOCK_LIMIT_FACTOR;
    if (block.bytes > limit) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `a header block of more than ${limit} bytes (SETTINGS_MAX_HEADER_LIST_SIZE ${this.options.maxHeaderListBytes})`);
    }
    if (block.frames > MAX_CONTINUATION_FRAMES) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `a header block in more than ${MAX_CONTINUATION_FRAMES} frames`);
    }
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Uint8Array): void {
    // Decoded whatever becomes of the stream: the decoder's table must follow the client's.
    const fields = this.decoder.decode(block, 0, block.byteLength);
    const existing = this.streams.get(streamId);
    if (existing !== undefined) return this.onTrailers(existing, endStream);
    if (streamId <= this.lastStreamId) return undefined; // a stream already closed here
    if (streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `stream ${streamId}: a client opens odd-numbered streams`);
    this.lastStreamId = streamId;
    if (this.peerGoingAway) return this.push(rstStreamFrame(streamId, ErrorCode.REFUSED_STREAM));
    if (this.streams.size >= this.options.maxConcurrentStreams) return this.push(rstStreamFrame(streamId, ErrorCode.REFUSED_STREAM));
    const stream = new ServerStream(streamId, fields ?? [], this.peerInitialWindow, this.options.streamWindowBytes, this);
    this.streams.set(streamId, stream);
    if (fields === undefined) {
      this.handler.onHeaderListTooLarge(stream, this.options.maxHeaderListBytes);
    } else if (!isValidRequest(fields)) {
      this.resetForClientError(stream, ErrorCode.PROTOCOL_ERROR);
      return undefined;
    } else {
      this.handler.onStream(stream);
    }
    if (endStream && !stream.closed) stream.remoteEnd();
    return undefined;
  }

  /** A second header block on an open stream: trailers, which must end it; gRPC reads none. */
  private onTrailers(stream: ServerStream, endStream: boolean): void {
    if (stream.remoteEnded) return this.resetForClientError(stream, ErrorCode.STREAM_CLOSED);
    if (!endStream) return this.resetForClientError(stream, ErrorCode.PROTOCOL_ERROR);
    return stream.remoteEnd();
  }

  /** A stream error of the client's making: the stream is reset, and it counts as a reset the client caused. */
  private resetForClientError(stream: ServerStream, errorCode: number): void {
    stream.reset(errorCode);
    this.spendReset();
  }

  /** Rapid reset (CVE-2023-44487): a client that keeps opening streams and resetting them is cut off. */
  private spendReset(): void {
    if (!this.resetBudget.take()) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${STREAM_RESETS_BURST} streams reset before they completed, at over ${STREAM_RESETS_PER_SECOND} a second`);
    }
  }

  private onPriority(streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    if (payload.byteLength !== 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `PRIORITY of ${payload.byteLength} bytes (5 expected)`);
  }

  private onRstStream(streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.byteLength !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `RST_STREAM of ${payload.byteLength} bytes (4 expected)`);
    if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on stream ${streamId}, which was never opened`);
    const errorCode = readUint32(payload, 0);
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    stream.close({ errorCode, message: `reset by the client (code ${errorCode})` });
    this.spendReset();
  }

  private onSettings(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS on stream ${streamId}`);
    if ((flags & FrameFlag.ACK) !== 0) {
      if (payload.byteLength !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'a SETTINGS acknowledgement with a payload');
      return;
    }
    if (payload.byteLength % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `SETTINGS of ${payload.byteLength} bytes (a multiple of 6 expected)`);
    if (payload.byteLength / 6 > MAX_SETTINGS_ENTRIES) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `SETTINGS with ${payload.byteLength / 6} entries (at most ${MAX_SETTINGS_ENTRIES})`);
    if (!this.settingsBudget.take()) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${SETTINGS_BURST} SETTINGS frames, at over ${SETTINGS_PER_SECOND} a second`);
    }
    let initialWindow: number | undefined;
    for (let offset = 0; offset < payload.byteLength; offset += 6) {
      const id = (payload[offset]! << 8) | payload[offset + 1]!;
      const value = readUint32(payload, offset + 2);
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_BYTES) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value} is over 2^31-1`);
        initialWindow = value; // the last one counts, and the streams are walked once
      } else {
        this.applySetting(id, value);
      }
    }
    this.push(frame(FrameType.SETTINGS, FrameFlag.ACK, 0));
    if (initialWindow !== undefined) this.applyInitialWindow(initialWindow);
  }

  /** The client's SETTINGS_INITIAL_WINDOW_SIZE: every open stream's send window moves by the change. */
  private applyInitialWindow(value: number): void {
    const delta = value - this.peerInitialWindow;
    if (delta === 0) return;
    this.peerInitialWindow = value;
    for (const stream of this.streams.values()) {
      stream.sendWindow += delta;
      if (stream.sendWindow > MAX_WINDOW_BYTES) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `stream ${stream.id}'s window passes 2^31-1`);
    }
    if (delta > 0) for (const stream of [...this.streams.values()]) if (stream.hasWaitingData) stream.sendWaiting();
  }

  /** Applies one of the client's settings other than INITIAL_WINDOW_SIZE. */
  private applySetting(id: number, value: number): void {
    switch (id) {
      case Setting.ENABLE_PUSH:
        if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value} (0 or 1 expected)`);
        return;
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_ALLOWED_FRAME_BYTES) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} (${DEFAULT_MAX_FRAME_BYTES} to ${MAX_ALLOWED_FRAME_BYTES} expected)`);
        }
        this.peerMaxFrameBytes = value;
        return;
      default:
        // HEADER_TABLE_SIZE (this side's encoder keeps no table), MAX_CONCURRENT_STREAMS (no push),
        // MAX_HEADER_LIST_SIZE (advisory; the responses here are small) and unknown ones.
        return;
    }
  }

  private onPing(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `PING on stream ${streamId}`);
    if (payload.byteLength !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `PING of ${payload.byteLength} bytes (8 expected)`);
    if ((flags & FrameFlag.ACK) !== 0) return; // this side sends no PING
    this.push(frame(FrameType.PING, FrameFlag.ACK, 0, payload));
  }

  private onGoAway(streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `GOAWAY on stream ${streamId}`);
    if (payload.byteLength < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `GOAWAY of ${payload.byteLength} bytes (at least 8 expected)`);
    const errorCode = readUint32(payload, 4);
    if (errorCode !== ErrorCode.NO_ERROR) {
      const debug = String.fromCharCode(...payload.subarray(8, 8 + 200));
      this.handler.onConnectionError(errorCode, `the client sent GOAWAY: ${debug}`, true);
    }
    this.peerGoingAway = true;
    if (this.streams.size === 0) this.end();
  }

  private onWindowUpdate(streamId: number, payload: Uint8Array): void {
    if (payload.byteLength !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `WINDOW_UPDATE of ${payload.byteLength} bytes (4 expected)`);
    const increment = readUint32(payload, 0) & 0x7fffffff;
    if (streamId === 0) return this.openConnectionWindow(increment);
    if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on stream ${streamId}, which was never opened`);
    const stream = this.streams.get(streamId);
    if (stream === undefined) return undefined;
    if (increment === 0) return this.resetForClientError(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_BYTES) return this.resetForClientError(stream, ErrorCode.FLOW_CONTROL_ERROR);
    if (stream.hasWaitingData) stream.sendWaiting();
    return undefined;
  }

  private openConnectionWindow(increment: number): void {
    if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
    this.sendWindow += increment;
    if (this.sendWindow > MAX_WINDOW_BYTES) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'the connection\'s window passes 2^31-1');
    for (const stream of [...this.blocked]) {
      if (this.sendWindow <= 0) return;
      this.blocked.delete(stream);
      stream.sendWaiting();
    }
  }

  // ---- writing (StreamHost) ------------------------------------------------------------------

  sendHeaderBlock(stream: ServerStream, block: Uint8Array, endStream: boolean): void {
    const maxFrame = this.peerMaxFrameBytes;
    const endFlag = endStream ? FrameFlag.END_STREAM : 0;
    if (block.byteLength <= maxFrame) {
      this.pushFrameHeader(block.byteLength, FrameType.HEADERS, FrameFlag.END_HEADERS | endFlag, stream.id);
      this.push(block);
      return;
    }
    for (let offset = 0; offset < block.byteLength; offset += maxFrame) {
      const part = block.subarray(offset, offset + maxFrame);
      const last = offset + maxFrame >= block.byteLength;
      const type = offset === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (offset === 0 ? endFlag : 0) | (last ? FrameFlag.END_HEADERS : 0);
      this.pushFrameHeader(part.byteLength, type, flags, stream.id);
      this.push(part);
    }
  }

  sendDataFrames(stream: ServerStream, data: Uint8Array, offset: number, endStream: boolean): number {
    let remaining = data.byteLength - offset;
    if (remaining === 0) {
      if (endStream) this.pushFrameHeader(0, FrameType.DATA, FrameFlag.END_STREAM, stream.id);
      return 0;
    }
    let sent = 0;
    while (remaining > 0) {
      const allowed = Math.min(stream.sendWindow, this.sendWindow, this.peerMaxFrameBytes, remaining);
      if (allowed <= 0) {
        if (this.sendWindow <= 0) this.blocked.add(stream);
        break;
      }
      remaining -= allowed;
      this.pushFrameHeader(allowed, FrameType.DATA, remaining === 0 && endStream ? FrameFlag.END_STREAM : 0, stream.id);
      this.pushPart(data, offset + sent, offset + sent + allowed);
      stream.sendWindow -= allowed;
      this.sendWindow -= allowed;
      sent += allowed;
    }
    return sent;
  }

  sendReset(stream: ServerStream, errorCode: number): void {
    this.push(rstStreamFrame(stream.id, errorCode));
  }

  acknowledgeData(stream: ServerStream, bytes: number): void {
    this.acknowledgeConnection(bytes);
    if (stream.remoteEnded || stream.closed) return;
    stream.unacknowledgedBytes += bytes;
    if (stream.unacknowledgedBytes < this.options.streamWindowBytes / 2) return;
    this.push(windowUpdateFrame(stream.id, stream.unacknowledgedBytes));
    stream.receiveWindow += stream.unacknowledgedBytes;
    stream.unacknowledgedBytes = 0;
  }

  releaseConnectionCredit(bytes: number): void {
    this.acknowledgeConnection(bytes);
  }

  noteWaitingBytes(bytes: number): void {
    this.waitingBytes += bytes;
    if (this.waitingBytes <= this.options.maxWaitingBytes || this.ended) return;
    // Called from a consumer's send, outside the reading loop: fail here, not by a throw.
    this.fail(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.options.maxWaitingBytes} bytes of answers wait for the client to open its flow-control windows`, false);
  }

  forget(stream: ServerStream): void {
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    if (this.peerGoingAway && this.streams.size === 0) this.end();
  }

  private acknowledgeConnection(bytes: number): void {
    this.unacknowledgedBytes += bytes;
    if (this.unacknowledgedBytes < this.options.connectionWindowBytes / 2) return;
    this.push(windowUpdateFrame(0, this.unacknowledgedBytes));
    this.receiveWindow += this.unacknowledgedBytes;
    this.unacknowledgedBytes = 0;
  }

  private pushFrameHeader(length: number, type: number, flags: number, streamId: number): void {
    if (this.ended) return;
    this.output.frameHeader(length, type, flags, streamId);
    this.scheduleFlush();
  }

  private push(bytes: Uint8Array): void {
    this.pushPart(bytes, 0, bytes.byteLength);
  }

  private pushPart(bytes: Uint8Array, from: number, to: number): void {
    if (this.ended) return;
    this.output.bytes(bytes, from, to);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.transport.defer(this.flushNow);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.output.pendingBytes === 0) return;
    this.transport.write(this.output.take());
    if (this.streams.size === 0) this.output.release();
  }

  // ---- ending --------------------------------------------------------------------------------

  /** A connection error: GOAWAY with the code and why, then the connection closes. */
  private fail(errorCode: number, message: string, byPeer: boolean): void {
    if (this.ended) return;
    this.continuation = undefined;
    this.push(goAwayFrame(this.lastStreamId, errorCode, message));
    this.handler.onConnectionError(errorCode, message, byPeer);
    this.end();
    this.closeAllStreams(errorCode, message);
  }

  private end(): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    this.transport.end();
  }

  private closeAllStreams(errorCode: number, message: string): void {
    for (const stream of [...this.streams.values()]) stream.close({ errorCode, message });
    this.streams.clear();
    this.blocked.clear();
  }
}

/** The bytes an incomplete frame (or preface) starting with `bytes` needs: its header, or all of it once the header is there. */
function bytesNeeded(bytes: Uint8Array, prefaceSeen: boolean): number {
  if (!prefaceSeen) return CLIENT_PREFACE.byteLength;
  if (bytes.byteLength < FRAME_HEADER_BYTES) return FRAME_HEADER_BYTES;
  const length = (bytes[0]! << 16) | (bytes[1]! << 8) | bytes[2]!;
  // A frame over the size limit is refused as soon as its header is read, not once it has come.
  return length > DEFAULT_MAX_FRAME_BYTES ? FRAME_HEADER_BYTES : FRAME_HEADER_BYTES + length;
}

/** A DATA or HEADERS payload without its padding (RFC 9113 §6.1). */
function unpad(flags: number, payload: Uint8Array, frameName: string): Uint8Array {
  if ((flags & FrameFlag.PADDED) === 0) return payload;
  if (payload.byteLength < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `a padded ${frameName} without its pad length`);
  const padLength = payload[0]!;
  if (padLength >= payload.byteLength) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `${frameName} padding of ${padLength} bytes fills the frame`);
  return payload.subarray(1, payload.byteLength - padLength);
}

function checkPrefacePrefix(bytes: Uint8Array, length: number): void {
  for (let i = 0; i < length; i++) {
    if (bytes[i] !== CLIENT_PREFACE[i]) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'not an HTTP/2 connection preface (this port speaks gRPC over HTTP/2 with prior knowledge)');
    }
  }
}

/** RFC 9113 §8.3.1's request header rules (as nghttp2 applies them for node:http2). */
function isValidRequest(fields: readonly string[]): boolean {
  let regularSeen = false;
  let method: string | undefined;
  let scheme: string | undefined;
  let path: string | undefined;
  let pseudoSeen = 0;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.length === 0 || hasUpperCase(name)) return false;
    if (name.charCodeAt(0) === 0x3a) {
      const bit = REQUEST_PSEUDO_HEADER_BITS.get(name);
      if (regularSeen || bit === undefined || (pseudoSeen & bit) !== 0) return false;
      pseudoSeen |= bit;
      if (name === ':method') method = value;
      else if (name === ':scheme') scheme = value;
      else if (name === ':path') path = value;
      continue;
    }
    regularSeen = true;
    if (CONNECTION_SPECIFIC_HEADERS.has(name)) return false;
    if (name === 'te' && value !== 'trailers') return false;
  }
  return method !== undefined && method.length > 0 && scheme !== undefined && scheme.length > 0 && path !== undefined && path.length > 0;
}

/** Whether the name has a character that lower-casing would change (as `name !== name.toLowerCase()`, without a copy). */
function hasUpperCase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) return true;
    // Past ASCII, lower-casing decides (a rare name; nghttp2 refuses such bytes anyway).
    if (code >= 0x80) return name.toLowerCase() !== name;
  }
  return false;
}

function concat(parts: readonly Uint8Array[], totalBytes: number): Uint8Array {
  const all = new Uint8Array(totalBytes);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.byteLength;
  }
  return all;
}
