// One header field line, `name: value CRLF` (RFC 9112 §5), scanned on bytes for both directions of
// the fast path. Only the bytes allowed in a value differ: a client's values are visible ASCII, a
// backend's may hold obs-text too. Pure: bytes in, offsets out.

import { BYTE_CLASS, COLON, CR, HTAB, LF, SP, TOKEN } from './syntax.ts';

/** The line is not complete yet: wait for more bytes. */
export const LINE_INCOMPLETE = -1;
/** The line is not one the fast path accepts; `problem` says why. */
export const LINE_REFUSED = 0;

/** Where the parts of the last scanned line are, as offsets into its bytes (reused, so nothing is allocated per line). */
export class HeaderLine {
  nameEnd = 0;
  valueStart = 0;
  /** The value's end with trailing whitespace left out. */
  valueEnd = 0;
  problem = '';
}

/**
 * Scans the header line at bytes[lineStart] into `line`; returns the position after its CRLF,
 * LINE_INCOMPLETE, or LINE_REFUSED with `line.problem` set. `valueClass` is the BYTE_CLASS flag a
 * value byte must have (CLIENT_VALUE or BACKEND_VALUE).
 */
export function scanHeaderLine(bytes: Uint8Array, lineStart: number, end: number, valueClass: number, line: HeaderLine): number {
  let pos = lineStart;
  while (pos < end && (BYTE_CLASS[bytes[pos]!]! & TOKEN) !== 0) pos++;
  if (pos === end) return LINE_INCOMPLETE;
  // No whitespace before the colon (RFC 9112 §5.1), no empty name.
  if (bytes[pos] !== COLON || pos === lineStart) return refused(line, 'header-name');
  line.nameEnd = pos;
  pos++;
  while (pos < end && (bytes[pos] === SP || bytes[pos] === HTAB)) pos++;
  const valueStart = pos;
  // CR is not a value byte: the loop stops at the line's end or at a byte that is not allowed.
  while (pos < end && (BYTE_CLASS[bytes[pos]!]! & valueClass) !== 0) pos++;
  if (pos === end) return LINE_INCOMPLETE;
  if (bytes[pos] !== CR) return refused(line, 'header-value');
  let valueEnd = pos;
  while (valueEnd > valueStart && (bytes[valueEnd - 1] === SP || bytes[valueEnd - 1] === HTAB)) valueEnd--;
  if (pos + 1 >= end) return LINE_INCOMPLETE;
  if (bytes[pos + 1] !== LF) return refused(line, 'bare-cr');
  line.valueStart = valueStart;
  line.valueEnd = valueEnd;
  return pos + 2;
}

function refused(line: HeaderLine, problem: string): typeof LINE_REFUSED {
  line.problem = problem;
  return LINE_REFUSED;
}
