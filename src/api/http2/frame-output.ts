// What a connection has to send, written into one buffer as it is produced: a burst of answers (a
// frame header and a payload each) leaves as one write, without a small array per frame header, a
// view per payload, and a concatenation at the end.
//
// Bytes taken from the buffer may still be queued in the socket, so they are never written over:
// the buffer is replaced when full (by one twice the size of what it must hold, so a large answer
// is copied a bounded number of times). A connection keeps at most one buffer of
// FRAME_OUTPUT_BUFFER_BYTES, and none once it has no stream open.

import { FRAME_HEADER_BYTES, writeFrameHeader } from './frame.ts';

/** A new buffer's size: a burst of about a hundred small answers. */
export const FRAME_OUTPUT_BUFFER_BYTES = 16 * 1024;

export class FrameOutput {
  private buffer: Uint8Array | undefined;
  /** The first byte not yet taken. */
  private start = 0;
  /** Where the next byte goes. */
  private end = 0;

  /** Bytes written and not yet taken. */
  get pendingBytes(): number {
    return this.end - this.start;
  }

  frameHeader(length: number, type: number, flags: number, streamId: number): void {
    const buffer = this.room(FRAME_HEADER_BYTES);
    writeFrameHeader(buffer, this.end, length, type, flags, streamId);
    this.end += FRAME_HEADER_BYTES;
  }

  /** Appends data[from, to). */
  bytes(data: Uint8Array, from = 0, to = data.byteLength): void {
    const length = to - from;
    const buffer = this.room(length);
    buffer.set(from === 0 && to === data.byteLength ? data : data.subarray(from, to), this.end);
    this.end += length;
  }

  /** The bytes written since the last take, as a view that nothing writes over. */
  take(): Uint8Array {
    const taken = this.buffer === undefined ? new Uint8Array(0) : this.buffer.subarray(this.start, this.end);
    this.start = this.end;
    // A buffer grown for a large answer is not kept for the small ones after it.
    if (this.buffer !== undefined && this.buffer.byteLength > FRAME_OUTPUT_BUFFER_BYTES) this.release();
    return taken;
  }

  /** Lets the buffer go if nothing waits in it (an idle connection holds none). */
  release(): void {
    if (this.pendingBytes > 0) return;
    this.buffer = undefined;
    this.start = 0;
    this.end = 0;
  }

  private room(bytes: number): Uint8Array {
    if (this.buffer !== undefined && this.end + bytes <= this.buffer.byteLength) return this.buffer;
    const pending = this.pendingBytes;
    const next = new Uint8Array(pending + bytes <= FRAME_OUTPUT_BUFFER_BYTES ? FRAME_OUTPUT_BUFFER_BYTES : 2 * (pending + bytes));
    if (pending > 0) next.set(this.buffer!.subarray(this.start, this.end));
    this.buffer = next;
    this.start = 0;
    this.end = pending;
    return next;
  }
}
