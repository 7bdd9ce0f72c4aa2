// gRPC's length-prefixed messages read off an HTTP/2 stream's DATA chunks, for the unary fast path
// (unary-fast-path.ts), with grpc-js's limit check and its error text.

/** gRPC's message prefix: a compressed flag and a big-endian length. */
export const MESSAGE_PREFIX_BYTES = 5;

/**
 * Splits a stream's bytes into gRPC messages, as grpc-js's decoder does: a message whose prefix
 * announces more than the limit is refused before any of it is kept, so at most one message of at
 * most the limit is ever buffered. The compressed flag is ignored with identity encoding, as grpc-js
 * does (only identity streams come here).
 */
export class MessageReader {
  private readonly maxMessageBytes: number;
  private readonly prefix = Buffer.alloc(MESSAGE_PREFIX_BYTES);
  private prefixFilled = 0;
  /** The message being read: its parts, and the bytes still missing. */
  private parts: Buffer[] = [];
  private missing = 0;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** The messages that `chunk` completes; throws (with grpc-js's text) on one over the limit. */
  write(chunk: Buffer): Buffer[] {
    const complete: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.prefixFilled < MESSAGE_PREFIX_BYTES) {
        const taken = Math.min(MESSAGE_PREFIX_BYTES - this.prefixFilled, chunk.length - at);
        chunk.copy(this.prefix, this.prefixFilled, at, at + taken);
        this.prefixFilled += taken;
        at += taken;
        if (this.prefixFilled < MESSAGE_PREFIX_BYTES) break;
        const length = this.prefix.readUInt32BE(1);
        if (this.maxMessageBytes !== -1 && length > this.maxMessageBytes) {
          throw new Error(`Received message larger than max (${length} vs ${this.maxMessageBytes})`);
        }
        this.missing = length;
        if (length === 0) {
          complete.push(Buffer.alloc(0));
          this.prefixFilled = 0;
        }
        continue;
      }
      const taken = Math.min(this.missing, chunk.length - at);
      this.parts.push(chunk.subarray(at, at + taken));
      this.missing -= taken;
      at += taken;
      if (this.missing === 0) {
        // A message within one chunk is handed over as a view of it, with no copy: neither server
        // that feeds this reader (the member's own HTTP/2 server, node:http2) writes into a chunk
        // once it is handed over. Decoders keep views into the message (put-codec.ts), which holds
        // the chunk only while the call lasts: what outlives the call (the Raft entry) is a copy.
        complete.push(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts));
        this.parts = [];
        this.prefixFilled = 0;
      }
    }
    return complete;
  }
}
