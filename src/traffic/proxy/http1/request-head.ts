// The fast path's HTTP/1.1 request-head parser. It accepts only a strict, simple subset of
// HTTP/1.1 that it can forward byte for byte without any doubt about where the request ends:
//
//   method SP origin-form SP "HTTP/1.1" CRLF *( field-name ":" OWS field-value OWS CRLF ) CRLF
//
// with a method from GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH; exactly one Host; a body framed
// by at most one Content-Length of plain digits; no Transfer-Encoding, Expect or Upgrade; field
// values of visible ASCII, SP and HTAB only; CRLF line ends only (no bare CR or LF); no obsolete
// line folding; the head within maxHeadBytes and maxHeaderCount.
//
// Anything else is not guessed at: the verdict is "hand off", and the shell gives the connection,
// with these bytes, to Node's own HTTP server, which accepts or refuses it as it would have anyway.
// The hand-off is the safety valve against request smuggling: the fast path never has to decide
// an ambiguous case (CL with TE, duplicate CL, CL with a sign or spaces inside, obs-fold, bare LF).
//
// Pure: bytes in, offsets and numbers out (the shell makes strings only of what it needs). A
// parser object is reused from request to request; its fields describe the last head parsed and
// stay valid until the next call.

import { HeaderLine, LINE_INCOMPLETE, LINE_REFUSED, scanHeaderLine } from './header-line.ts';
import { ConnectionOptions } from './connection-options.ts';
import {
  BYTE_CLASS, CLIENT_VALUE, CR, HEADER_CONNECTION, HEADER_CONTENT_LENGTH, HEADER_EXPECT, HEADER_HOP_BY_HOP,
  HEADER_HOST, HEADER_KEEP_ALIVE, HEADER_OTHER, HEADER_SHED_MARKER, HEADER_TRANSFER_ENCODING, HEADER_UPGRADE,
  HEADER_X_FORWARDED_FOR, HEADER_X_FORWARDED_OTHER, HTAB, LF, SP, TARGET, asciiBytes, decimalValue, headerKind,
  nameIs,
} from './syntax.ts';

export const HEAD_INCOMPLETE = 0;
export const HEAD_PARSED = 1;
export const HEAD_HAND_OFF = 2;
export type HeadVerdict = typeof HEAD_INCOMPLETE | typeof HEAD_PARSED | typeof HEAD_HAND_OFF;

export interface RequestHeadLimits {
  /** A head (request line and headers) longer than this is handed off (Node's own limit is 16 KiB). */
  maxHeadBytes: number;
  /** More header lines than this are handed off. */
  maxHeaderCount: number;
  /** Connection options beyond this many are handed off. */
  maxConnectionTokens: number;
}

export const DEFAULT_REQUEST_HEAD_LIMITS: RequestHeadLimits = { maxHeadBytes: 8192, maxHeaderCount: 100, maxConnectionTokens: 8 };

/** Fields of one header line in `headers`, in this order. */
export const HEADER_FIELDS = 5;
export const FIELD_LINE_START = 0;
export const FIELD_NAME_END = 1;
export const FIELD_VALUE_START = 2;
export const FIELD_VALUE_END = 3;
export const FIELD_KIND = 4;

/** Known methods by length; methods are case-sensitive (RFC 9110 §9.1). */
const METHODS: readonly (readonly [Uint8Array, string])[][] = (() => {
  const byLength: [Uint8Array, string][][] = [];
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) (byLength[method.length] ??= []).push([asciiBytes(method), method]);
  return byLength;
})();
const LONGEST_METHOD = 7;
const VERSION_CRLF = asciiBytes('HTTP/1.1\r\n');

/** Headers the proxy removes or replaces on the way to the backend (RFC 9110 §7.6.1, plus X-Forwarded-*). */
function droppedOnForward(kind: number): boolean {
  return kind === HEADER_CONNECTION || kind === HEADER_KEEP_ALIVE || kind === HEADER_HOP_BY_HOP || kind === HEADER_X_FORWARDED_FOR || kind === HEADER_X_FORWARDED_OTHER;
}

export class RequestHeadParser {
  readonly limits: RequestHeadLimits;
  private readonly requestIdName: Uint8Array;

  /** Why the last head was handed off (a short constant, for logs and tests). */
  handOffReason = '';
  method = '';
  /** End of the request line, CRLF included. */
  requestLineEnd = 0;
  targetStart = 0;
  targetEnd = 0;
  /** End of the head: the first byte after the empty line. */
  headEnd = 0;
  hostStart = -1;
  hostEnd = -1;
  /** -1 without a Content-Length header. */
  contentLength = -1;
  /** The client asked to close the connection after this exchange. */
  connectionClose = false;
  /** The client's request id (value range), -1 when it sent none. */
  requestIdStart = -1;
  requestIdEnd = -1;
  headerCount = 0;
  /** HEADER_FIELDS numbers per header line. */
  readonly headers: Int32Array;
  /** [start, end) byte ranges of header lines forwarded as they are (hop-by-hop and X-Forwarded-* removed), adjacent lines merged. */
  readonly keptRuns: Int32Array;
  keptRunCount = 0;
  private readonly connectionOptions: ConnectionOptions;
  /** The header line being parsed (one object, reused). */
  private readonly line = new HeaderLine();

  constructor(requestIdHeader: string, limits: RequestHeadLimits = DEFAULT_REQUEST_HEAD_LIMITS) {
    this.limits = limits;
    this.requestIdName = asciiBytes(requestIdHeader.toLowerCase());
    this.headers = new Int32Array(limits.maxHeaderCount * HEADER_FIELDS);
    this.keptRuns = new Int32Array(limits.maxHeaderCount * 2);
    this.connectionOptions = new ConnectionOptions(limits.maxConnectionTokens);
  }

  /** Parses the head that starts at bytes[start]; bytes[start, end) are all that arrived so far. */
  parse(bytes: Uint8Array, start: number, end: number): HeadVerdict {
    this.reset();
    let pos = this.parseRequestLine(bytes, start, end);
    if (pos < 0) return this.incompleteOrTooLarge(start, end);
    if (pos === 0) return HEAD_HAND_OFF;
    for (;;) {
      if (pos - start > this.limits.maxHeadBytes) return this.handOff('head-too-large');
      if (pos >= end) return this.incompleteOrTooLarge(start, end);
      const first = bytes[pos]!;
      if (first === CR) {
        if (pos + 1 >= end) return this.incompleteOrTooLarge(start, end);
        if (bytes[pos + 1] !== LF) return this.handOff('bare-cr');
        this.headEnd = pos + 2;
        return this.finish(bytes, start);
      }
      if (first === LF) return this.handOff('bare-lf');
      if (first === SP || first === HTAB) return this.handOff('obs-fold');
      const next = this.parseHeaderLine(bytes, pos, end);
      if (next < 0) return this.incompleteOrTooLarge(start, end);
      if (next === 0) return HEAD_HAND_OFF;
      pos = next;
    }
  }

  private reset(): void {
    this.handOffReason = '';
    this.method = '';
    this.hostStart = -1;
    this.hostEnd = -1;
    this.contentLength = -1;
    this.connectionClose = false;
    this.requestIdStart = -1;
    this.requestIdEnd = -1;
    this.headerCount = 0;
    this.keptRunCount = 0;
    this.connectionOptions.reset();
  }

  private handOff(reason: string): typeof HEAD_HAND_OFF {
    this.handOffReason = reason;
    return HEAD_HAND_OFF;
  }

  private incompleteOrTooLarge(start: number, end: number): HeadVerdict {
    return end - start > this.limits.maxHeadBytes ? this.handOff('head-too-large') : HEAD_INCOMPLETE;
  }

  /** Returns the position after the request line's CRLF, -1 when more bytes are needed, 0 to hand off. */
  private parseRequestLine(bytes: Uint8Array, start: number, end: number): number {
    let pos = start;
    while (pos < end && pos - start <= LONGEST_METHOD && bytes[pos] !== SP) pos++;
    if (pos === end) return -1;
    const method = bytes[pos] === SP ? methodName(bytes, start, pos) : undefined;
    if (method === undefined) return this.handOffAt('method');
    this.method = method;
    pos++;
    this.targetStart = pos;
    if (pos === end) return -1;
    // Only origin-form ("/path?query"): absolute-form, authority-form and "*" go to Node.
    if (bytes[pos] !== 0x2f) return this.handOffAt('target');
    while (pos < end && (BYTE_CLASS[bytes[pos]!]! & TARGET) !== 0) pos++;
    if (pos === end) return -1;
    if (bytes[pos] !== SP) return this.handOffAt('target');
    this.targetEnd = pos;
    pos++;
    for (let i = 0; i < VERSION_CRLF.length; i++, pos++) {
      if (pos === end) return -1;
      // HTTP/1.0 (and anything else) goes to Node: its keep-alive rules differ.
      if (bytes[pos] !== VERSION_CRLF[i]) return this.handOffAt('version');
    }
    this.requestLineEnd = pos;
    return pos;
  }

  private handOffAt(reason: string): 0 {
    this.handOffReason = reason;
    return 0;
  }

  /** Parses one header line at bytes[pos]; returns the position after its CRLF, -1 when more bytes are needed, 0 to hand off. */
  private parseHeaderLine(bytes: Uint8Array, lineStart: number, end: number): number {
    const line = this.line;
    const next = scanHeaderLine(bytes, lineStart, end, CLIENT_VALUE, line);
    if (next === LINE_INCOMPLETE) return -1;
    if (next === LINE_REFUSED) return this.handOffAt(line.problem);
    const { nameEnd, valueStart, valueEnd } = line;
    if (this.headerCount === this.limits.maxHeaderCount) return this.handOffAt('too-many-headers');
    const kind = headerKind(bytes, lineStart, nameEnd);
    if (!this.noteHeader(bytes, kind, lineStart, nameEnd, valueStart, valueEnd)) return 0;
    const fields = this.headerCount * HEADER_FIELDS;
    this.headers[fields + FIELD_LINE_START] = lineStart;
    this.headers[fields + FIELD_NAME_END] = nameEnd;
    this.headers[fields + FIELD_VALUE_START] = valueStart;
    this.headers[fields + FIELD_VALUE_END] = valueEnd;
    this.headers[fields + FIELD_KIND] = kind;
    this.headerCount++;
    return next;
  }

  /** Takes note of a header with a meaning here; false when it makes the request one to hand off. */
  private noteHeader(bytes: Uint8Array, kind: number, nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): boolean {
    switch (kind) {
      case HEADER_HOST:
        if (this.hostStart >= 0) return this.refuse('duplicate-host');
        if (valueEnd === valueStart) return this.refuse('empty-host');
        this.hostStart = valueStart;
        this.hostEnd = valueEnd;
        return true;
      case HEADER_CONTENT_LENGTH: {
        if (this.contentLength >= 0) return this.refuse('duplicate-content-length');
        const length = decimalValue(bytes, valueStart, valueEnd);
        if (length < 0) return this.refuse('content-length');
        this.contentLength = length;
        return true;
      }
      case HEADER_TRANSFER_ENCODING: return this.refuse('transfer-encoding');
      case HEADER_EXPECT: return this.refuse('expect');
      case HEADER_UPGRADE: return this.refuse('upgrade');
      case HEADER_CONNECTION: return this.noteConnectionOptions(bytes, valueStart, valueEnd);
      case HEADER_OTHER:
      case HEADER_SHED_MARKER:
        if (nameIs(bytes, nameStart, nameEnd, this.requestIdName)) {
          if (this.requestIdStart >= 0) return this.refuse('duplicate-request-id');
          this.requestIdStart = valueStart;
          this.requestIdEnd = valueEnd;
        }
        return true;
      default:
        return true;
    }
  }

  private refuse(reason: string): false {
    this.handOffReason = reason;
    return false;
  }

  /** Connection: close, keep-alive, or names of hop-by-hop headers; upgrade is handed off. */
  private noteConnectionOptions(bytes: Uint8Array, valueStart: number, valueEnd: number): boolean {
    const options = this.connectionOptions;
    if (!options.add(bytes, valueStart, valueEnd)) return this.refuse('connection');
    if (options.upgrade) return this.refuse('upgrade');
    if (options.close) this.connectionClose = true;
    // A Connection option naming a header that frames or routes the request (Content-Length,
    // Host...) would have the proxy drop what the backend needs to read the request right.
    const harmless = options.everyName((nameStart, nameEnd) => headerKind(bytes, nameStart, nameEnd) === HEADER_OTHER && !nameIs(bytes, nameStart, nameEnd, this.requestIdName));
    return harmless || this.refuse('connection');
  }

  /** The head is complete: final checks, then the runs of header lines forwarded as they are. */
  private finish(bytes: Uint8Array, start: number): HeadVerdict {
    if (this.headEnd - start > this.limits.maxHeadBytes) return this.handOff('head-too-large');
    if (this.hostStart < 0) return this.handOff('no-host');
    let runStart = -1;
    let runEnd = -1;
    for (let i = 0; i < this.headerCount; i++) {
      const fields = i * HEADER_FIELDS;
      const lineStart = this.headers[fields + FIELD_LINE_START]!;
      const lineEnd = i + 1 < this.headerCount ? this.headers[fields + HEADER_FIELDS + FIELD_LINE_START]! : this.headEnd - 2;
      if (this.isDropped(bytes, fields)) continue;
      if (lineStart === runEnd) {
        runEnd = lineEnd;
        continue;
      }
      if (runStart >= 0) this.addRun(runStart, runEnd);
      runStart = lineStart;
      runEnd = lineEnd;
    }
    if (runStart >= 0) this.addRun(runStart, runEnd);
    return HEAD_PARSED;
  }

  private isDropped(bytes: Uint8Array, fields: number): boolean {
    const kind = this.headers[fields + FIELD_KIND]!;
    if (droppedOnForward(kind)) return true;
    const nameStart = this.headers[fields + FIELD_LINE_START]!;
    const nameEnd = this.headers[fields + FIELD_NAME_END]!;
    if (this.requestIdStart >= 0 && this.headers[fields + FIELD_VALUE_START] === this.requestIdStart && nameIs(bytes, nameStart, nameEnd, this.requestIdName)) return true;
    return this.connectionOptions.lists(bytes, nameStart, nameEnd);
  }

  private addRun(start: number, end: number): void {
    this.keptRuns[this.keptRunCount * 2] = start;
    this.keptRuns[this.keptRunCount * 2 + 1] = end;
    this.keptRunCount++;
  }
}

function methodName(bytes: Uint8Array, start: number, end: number): string | undefined {
  const candidates = METHODS[end - start];
  if (candidates === undefined) return undefined;
  for (const [name, method] of candidates) {
    let equal = true;
    for (let i = 0; i < name.length && equal; i++) equal = bytes[start + i] === name[i];
    if (equal) return method;
  }
  return undefined;
}
