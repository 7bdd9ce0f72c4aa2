// Finds where a chunked body ends (RFC 9112 §7.1) as its bytes stream past, without decoding it:
// the fast path relays chunked bodies to the client exactly as the backend framed them, so all it
// must know is where the message ends (to reuse the connection, and never to relay a byte beyond
// it) and that the framing is sound. A size line with anything but hex digits, an optional
// extension and CRLF, a chunk not followed by CRLF, or a bare CR or LF makes the body invalid.
//
// Pure: a state machine fed with byte ranges.

import { BACKEND_VALUE, BYTE_CLASS, CR, HEX_DIGIT, HTAB, LF, SP } from './syntax.ts';

export const CHUNKED_NEED_MORE = -1;
export const CHUNKED_INVALID = -2;

/** 13 hex digits (2^52 bytes) is more than any body and stays an exact number. */
const MAX_SIZE_DIGITS = 13;

const SIZE = 0;
const EXTENSION = 1;
const SIZE_LF = 2;
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const TRAILER_LINE_START = 6;
const TRAILER_LINE = 7;
const TRAILER_LF = 8;
const FINAL_LF = 9;
const DONE = 10;

export class ChunkedBodyScanner {
  private state = SIZE;
  private size = 0;
  private sizeDigits = 0;
  private remaining = 0;
  invalidReason = '';

  reset(): void {
    this.state = SIZE;
    this.size = 0;
    this.sizeDigits = 0;
    this.remaining = 0;
    this.invalidReason = '';
  }

  /**
   * Scans bytes[start, end). Returns the index just past the body's last byte when the body ends
   * within the range, CHUNKED_NEED_MORE when every byte belongs to the body and more are to come,
   * CHUNKED_INVALID when the framing is broken.
   */
  scan(bytes: Uint8Array, start: number, end: number): number {
    let pos = start;
    while (pos < end) {
      switch (this.state) {
        case SIZE: {
          const byte = bytes[pos]!;
          if ((BYTE_CLASS[byte]! & HEX_DIGIT) !== 0) {
            if (++this.sizeDigits > MAX_SIZE_DIGITS) return this.invalid('chunk-size-too-large');
            this.size = this.size * 16 + hexValue(byte);
          } else if (this.sizeDigits === 0) {
            return this.invalid('chunk-size');
          } else if (byte === 0x3b || byte === SP || byte === HTAB) {
            this.state = EXTENSION;
          } else if (byte === CR) {
            this.state = SIZE_LF;
          } else {
            return this.invalid('chunk-size');
          }
          pos++;
          break;
        }
        case EXTENSION: {
          const byte = bytes[pos]!;
          if (byte === CR) this.state = SIZE_LF;
          else if ((BYTE_CLASS[byte]! & BACKEND_VALUE) === 0) return this.invalid('chunk-extension');
          pos++;
          break;
        }
        case SIZE_LF:
          if (bytes[pos] !== LF) return this.invalid('bare-cr');
          pos++;
          if (this.size === 0) {
            this.state = TRAILER_LINE_START;
          } else {
            this.remaining = this.size;
            this.state = DATA;
          }
          break;
        case DATA: {
          const take = Math.min(this.remaining, end - pos);
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) this.state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (bytes[pos] !== CR) return this.invalid('chunk-not-followed-by-crlf');
          this.state = DATA_LF;
          pos++;
          break;
        case DATA_LF:
          if (bytes[pos] !== LF) return this.invalid('chunk-not-followed-by-crlf');
          this.state = SIZE;
          this.size = 0;
          this.sizeDigits = 0;
          pos++;
          break;
        case TRAILER_LINE_START: {
          const byte = bytes[pos]!;
          if (byte === CR) this.state = FINAL_LF;
          else if (byte === LF || byte === SP || byte === HTAB || (BYTE_CLASS[byte]! & BACKEND_VALUE) === 0) return this.invalid('trailer');
          else this.state = TRAILER_LINE;
          pos++;
          break;
        }
        case TRAILER_LINE: {
          const byte = bytes[pos]!;
          if (byte === CR) this.state = TRAILER_LF;
          else if ((BYTE_CLASS[byte]! & BACKEND_VALUE) === 0) return this.invalid('trailer');
          pos++;
          break;
        }
        case TRAILER_LF:
          if (bytes[pos] !== LF) return this.invalid('bare-cr');
          this.state = TRAILER_LINE_START;
          pos++;
          break;
        case FINAL_LF:
          if (bytes[pos] !== LF) return this.invalid('bare-cr');
          this.state = DONE;
          return pos + 1;
        default:
          return this.invalid('bytes-after-end');
      }
    }
    return CHUNKED_NEED_MORE;
  }

  private invalid(reason: string): number {
    this.invalidReason = reason;
    return CHUNKED_INVALID;
  }
}

function hexValue(byte: number): number {
  if (byte <= 0x39) return byte - 0x30;
  return (byte | 0x20) - 0x61 + 10;
}
