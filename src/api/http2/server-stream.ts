// One request stream of a server connection (server-connection.ts): what its consumer sees of the
// client's side (headers, data, end, or the stream going away) and what it sends back (headers,
// data within the flow-control windows, trailers, a reset).
//
// Data beyond the windows waits here, in order, with the trailers behind it; the connection sends
// it as the client opens its windows. Nothing waits without bound: what waits is what the
// consumer gave, and a consumer that relays (the grpc-js bridge) stops reading its own side when
// sendData returns false and starts again on onWritable.

import { ErrorCode } from './frame.ts';

/** What a stream's consumer is told. Each is called on the connection's turn, never reentrantly. */
export interface StreamConsumer {
  /**
   * Request body bytes, in order. The connection never reuses them, but a view keeps the whole
   * read it came in alive: copy small parts to keep them long.
   */
  onData(chunk: Uint8Array): void;
  /** The client sent its last byte (END_STREAM). */
  onEnd(): void;
  /**
   * The stream is closed, once: both sides done (NO_ERROR), reset by either side, or the
   * connection gone. Nothing more is sent or received on it.
   */
  onClose(reason: StreamCloseReason): void;
}

export interface StreamCloseReason {
  /** NO_ERROR when both sides ended it; else the RST_STREAM code, or the GOAWAY's. */
  errorCode: number;
  /** Why, for logs: 'reset by the client', 'connection closed', ... */
  message: string;
}

/** The connection's side of a stream: how frames go out and what it keeps per stream. */
export interface StreamHost {
  sendHeaderBlock(stream: ServerStream, block: Uint8Array, endStream: boolean): void;
  /** Sends what the windows allow of `data` from `offset`; returns the bytes sent. */
  sendDataFrames(stream: ServerStream, data: Uint8Array, offset: number, endStream: boolean): number;
  sendReset(stream: ServerStream, errorCode: number): void;
  /** The consumer has taken `bytes` of request data: the client may send that much more. */
  acknowledgeData(stream: ServerStream, bytes: number): void;
  /** Request bytes delivered to a stream that closed before they were acknowledged: the connection's window gets them back. */
  releaseConnectionCredit(bytes: number): void;
  /** Response bytes waiting for the client's windows grew (or shrank, negative) by `bytes`. */
  noteWaitingBytes(bytes: number): void;
  /** The stream is closed: the connection forgets it. */
  forget(stream: ServerStream): void;
}

export class ServerStream {
  readonly id: number;
  /** The request's header fields, flat: [name0, value0, name1, value1, ...]. */
  readonly headers: readonly string[];
  consumer: StreamConsumer | undefined;
  /** Set by a consumer that acknowledges request data itself (acknowledge); else it is at once. */
  manualFlowControl = false;
  /** Called once the data that waited for the windows has all gone out. */
  onWritable: (() => void) | undefined;
  /** Bytes this side may still send on the stream (the client's window for it). May go negative. */
  sendWindow: number;
  /** Bytes the client may still send before this side opens the stream's window again. */
  receiveWindow: number;
  /** Request bytes acknowledged by the consumer and not yet given back to the client in a WINDOW_UPDATE. */
  unacknowledgedBytes = 0;
  /** Request bytes delivered to the consumer and not yet acknowledged by it. */
  deliveredBytes = 0;
  remoteEnded = false;
  localEnded = false;
  closed = false;
  /** Data waiting for the windows, in order; the trailers (or the end) go out after it. */
  private readonly waiting: { data: Uint8Array; offset: number; endStream: boolean }[] = [];
  private waitingTrailers: Uint8Array | undefined;
  private readonly host: StreamHost;

  constructor(id: number, headers: readonly string[], sendWindow: number, receiveWindow: number, host: StreamHost) {
    this.id = id;
    this.headers = headers;
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
    this.host = host;
  }

  /** Response headers (an HPACK block); with endStream, a trailers-only response. */
  sendHeaders(block: Uint8Array, endStream: boolean): void {
    if (this.localEnded || this.closed) return;
    if (endStream) this.localEnded = true;
    this.host.sendHeaderBlock(this, block, endStream);
    if (endStream) this.afterLocalEnd();
  }

  /** Response data; false if some of it waits for the client's windows (see onWritable). */
  sendData(data: Uint8Array, endStream = false): boolean {
    if (this.localEnded || this.closed) return true;
    if (endStream) this.localEnded = true;
    const sent = this.waiting.length === 0 ? this.host.sendDataFrames(this, data, 0, endStream) : 0;
    if (sent === data.byteLength && this.waiting.length === 0) {
      if (endStream) this.afterLocalEnd();
      return true;
    }
    this.waiting.push({ data, offset: sent, endStream });
    this.host.noteWaitingBytes(data.byteLength - sent);
    return false;
  }

  /** The trailers (an HPACK block), which end the stream, after any data still waiting. */
  sendTrailers(block: Uint8Array): void {
    if (this.localEnded || this.closed) return;
    this.localEnded = true;
    if (this.waiting.length > 0) {
      this.waitingTrailers = block;
      return;
    }
    this.host.sendHeaderBlock(this, block, true);
    this.afterLocalEnd();
  }

  /** Resets the stream (RST_STREAM): the client's call fails with this code. */
  reset(errorCode: number = ErrorCode.CANCEL): void {
    if (this.closed) return;
    this.host.sendReset(this, errorCode);
    this.close({ errorCode, message: `reset by the server (code ${errorCode})` });
  }

  /** The consumer is done with `bytes` of request data (with manualFlowControl, it says so itself). */
  acknowledge(bytes: number): void {
    if (this.closed) return; // closing gave the connection its credit back
    const taken = Math.min(bytes, this.deliveredBytes);
    this.deliveredBytes -= taken;
    this.host.acknowledgeData(this, taken);
  }

  get hasWaitingData(): boolean {
    return this.waiting.length > 0;
  }

  /** Sends what the windows now allow of the waiting data (the connection calls it on WINDOW_UPDATE). */
  sendWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      const sent = this.host.sendDataFrames(this, next.data, next.offset, next.endStream);
      next.offset += sent;
      this.host.noteWaitingBytes(-sent);
      if (next.offset < next.data.byteLength) return;
      this.waiting.shift();
    }
    if (this.waitingTrailers !== undefined) {
      const block = this.waitingTrailers;
      this.waitingTrailers = undefined;
      this.host.sendHeaderBlock(this, block, true);
    }
    if (this.localEnded) this.afterLocalEnd();
    if (!this.closed) this.onWritable?.();
  }

  /** The client's END_STREAM. */
  remoteEnd(): void {
    this.remoteEnded = true;
    this.consumer?.onEnd();
    if (this.localEnded && !this.hasWaitingData) this.close({ errorCode: ErrorCode.NO_ERROR, message: 'completed' });
  }

  /**
   * This side has sent its end. If the client is still sending, it is asked to stop (RST_STREAM
   * NO_ERROR, RFC 9113 §8.1): a complete response needs no more of the request.
   */
  private afterLocalEnd(): void {
    if (this.hasWaitingData || this.closed) return;
    if (!this.remoteEnded) this.host.sendReset(this, ErrorCode.NO_ERROR);
    this.close({ errorCode: ErrorCode.NO_ERROR, message: 'completed' });
  }

  /** Closes the stream (the connection calls it on the client's RST_STREAM, or when it goes) and tells the consumer. */
  close(reason: StreamCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    let waitingBytes = 0;
    for (const entry of this.waiting) waitingBytes += entry.data.byteLength - entry.offset;
    if (waitingBytes > 0) this.host.noteWaitingBytes(-waitingBytes);
    this.waiting.length = 0;
    this.waitingTrailers = undefined;
    if (this.deliveredBytes > 0) this.host.releaseConnectionCredit(this.deliveredBytes);
    this.deliveredBytes = 0;
    this.host.forget(this);
    this.consumer?.onClose(reason);
  }
}
