// The options of a Connection header (RFC 9110 §7.6.1), read on bytes for both directions of the
// fast path: `close`, `keep-alive`, `upgrade`, and the names of further hop-by-hop header fields,
// which a proxy must not forward. The names are kept as offsets into the head's bytes, at most
// `maxNames` of them, so parsing allocates nothing. Pure: bytes in, offsets and flags out.

import { BYTE_CLASS, COMMA, HTAB, SP, TOKEN, asciiBytes, nameIs, sameName } from './syntax.ts';

const OPTION_CLOSE = asciiBytes('close');
const OPTION_KEEP_ALIVE = asciiBytes('keep-alive');
const OPTION_UPGRADE = asciiBytes('upgrade');

export class ConnectionOptions {
  /** `close` was listed: the connection ends after this message. */
  close = false;
  /** `upgrade` was listed (a protocol switch, which the fast path does not do). */
  upgrade = false;
  /** Start and end offsets of each header name listed, in pairs. */
  private readonly names: Int32Array;
  private nameCount = 0;
  private readonly maxNames: number;

  constructor(maxNames: number) {
    this.maxNames = maxNames;
    this.names = new Int32Array(maxNames * 2);
  }

  reset(): void {
    this.close = false;
    this.upgrade = false;
    this.nameCount = 0;
  }

  /**
   * Adds the options of one Connection field value (a message may carry several). False when the
   * value is not a comma-separated list of tokens, or lists more header names than the limit.
   */
  add(bytes: Uint8Array, valueStart: number, valueEnd: number): boolean {
    let pos = valueStart;
    while (pos < valueEnd) {
      while (pos < valueEnd && (bytes[pos] === SP || bytes[pos] === HTAB || bytes[pos] === COMMA)) pos++;
      const tokenStart = pos;
      while (pos < valueEnd && (BYTE_CLASS[bytes[pos]!]! & TOKEN) !== 0) pos++;
      const tokenEnd = pos;
      while (pos < valueEnd && (bytes[pos] === SP || bytes[pos] === HTAB)) pos++;
      if (pos < valueEnd && bytes[pos] !== COMMA) return false;
      if (tokenEnd === tokenStart) continue;
      if (nameIs(bytes, tokenStart, tokenEnd, OPTION_CLOSE)) this.close = true;
      else if (nameIs(bytes, tokenStart, tokenEnd, OPTION_UPGRADE)) this.upgrade = true;
      else if (!nameIs(bytes, tokenStart, tokenEnd, OPTION_KEEP_ALIVE)) {
        if (this.nameCount === this.maxNames) return false;
        this.names[this.nameCount * 2] = tokenStart;
        this.names[this.nameCount * 2 + 1] = tokenEnd;
        this.nameCount++;
      }
    }
    return true;
  }

  /** Whether `test` holds for every header name listed so far (given as offsets into `bytes`). */
  everyName(test: (nameStart: number, nameEnd: number) => boolean): boolean {
    for (let n = 0; n < this.nameCount; n++) {
      if (!test(this.names[n * 2]!, this.names[n * 2 + 1]!)) return false;
    }
    return true;
  }

  /** Whether the header name at [nameStart, nameEnd) of `bytes` is one the options list (case-insensitively). */
  lists(bytes: Uint8Array, nameStart: number, nameEnd: number): boolean {
    for (let n = 0; n < this.nameCount; n++) {
      if (sameName(bytes, nameStart, nameEnd, bytes, this.names[n * 2]!, this.names[n * 2 + 1]!)) return true;
    }
    return false;
  }
}
