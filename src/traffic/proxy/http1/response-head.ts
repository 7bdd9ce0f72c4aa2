// The fast path's HTTP/1.1 response-head parser: just enough of a backend's response to relay it
// safely, byte for byte. It finds the status, how the body is framed (RFC 9112 §6.3: none for HEAD,
// 1xx, 204 and 304; chunked; Content-Length; or until the connection closes), whether the
// connection may be reused, and which header lines go on to the client (hop-by-hop ones do not).
//
// What it cannot read without doubt is invalid, and the exchange fails as any broken backend
// answer does (502): Content-Length with Transfer-Encoding, duplicate Content-Length, a
// Transfer-Encoding whose last coding is not chunked, bare CR or LF, obsolete line folding,
// control characters, a head over maxHeadBytes. A proxy that relayed such a response would let a
// backend desynchronise the client connection (response splitting).
//
// Pure, and reused from response to response like the request parser.

import { HeaderLine, LINE_INCOMPLETE, LINE_REFUSED, scanHeaderLine } from './header-line.ts';
import { ConnectionOptions } from './connection-options.ts';
import {
  BACKEND_VALUE, BYTE_CLASS, COMMA, CR, HEADER_CONNECTION, HEADER_CONTENT_LENGTH, HEADER_HOP_BY_HOP, HEADER_KEEP_ALIVE,
  HEADER_SHED_MARKER, HEADER_TRANSFER_ENCODING, HEADER_UPGRADE, HTAB, LF, SP, TOKEN, asciiBytes, decimalValue,
  equalsIgnoringCase, headerKind, nameIs,
} from './syntax.ts';

export const RESPONSE_INCOMPLETE = 0;
export const RESPONSE_PARSED = 1;
export const RESPONSE_INVALID = 2;
export type ResponseVerdict = typeof RESPONSE_INCOMPLETE | typeof RESPONSE_PARSED | typeof RESPONSE_INVALID;

/** How the response body is delimited. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
export const BODY_UNTIL_CLOSE = 3;
export type BodyFraming = typeof BODY_NONE | typeof BODY_LENGTH | typeof BODY_CHUNKED | typeof BODY_UNTIL_CLOSE;

export interface ResponseHeadLimits {
  /** Larger response heads are invalid (undici's default limit is 16 KiB as well). */
  maxHeadBytes: number;
  maxHeaderCount: number;
  maxConnectionTokens: number;
}

export const DEFAULT_RESPONSE_HEAD_LIMITS: ResponseHeadLimits = { maxHeadBytes: 16_384, maxHeaderCount: 256, maxConnectionTokens: 8 };

const HTTP_1 = asciiBytes('HTTP/1.');
const TOKEN_CHUNKED = asciiBytes('chunked');
const TIMEOUT_PARAMETER = asciiBytes('timeout=');

export class ResponseHeadParser {
  private readonly limits: ResponseHeadLimits;

  invalidReason = '';
  status = 0;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion = 1;
  /** Start of the three status digits in the status line. */
  statusStart = 0;
  /** Start of the reason phrase, CRLF included (the end of the status line when it has none). */
  reasonStart = 0;
  statusLineEnd = 0;
  headEnd = 0;
  framing: BodyFraming = BODY_NONE;
  /** -1 without Content-Length. */
  contentLength = -1;
  /** The backend will close the connection (Connection: close, or HTTP/1.0): it cannot be reused. */
  connectionClose = false;
  /** The backend's Keep-Alive: timeout=N hint in milliseconds, -1 without one. */
  keepAliveTimeoutMs = -1;
  /** The response carries x-concord-shed: a shedding proxy's refusal, never retried. */
  shed = false;
  readonly keptRuns: Int32Array;
  keptRunCount = 0;
  private readonly lines: Int32Array;
  private lineCount = 0;
  private transferEncodings = 0;
  private readonly connectionOptions: ConnectionOptions;
  /** The header line being parsed (one object, reused). */
  private readonly line = new HeaderLine();

  constructor(limits: ResponseHeadLimits = DEFAULT_RESPONSE_HEAD_LIMITS) {
    this.limits = limits;
    // Per header line: its start, the end of its name, its kind.
    this.lines = new Int32Array(limits.maxHeaderCount * 3);
    this.keptRuns = new Int32Array(limits.maxHeaderCount * 2);
    this.connectionOptions = new ConnectionOptions(limits.maxConnectionTokens);
  }

  /** Parses the response head at bytes[start]; `headRequest` when it answers a HEAD (no body, whatever the headers say). */
  parse(bytes: Uint8Array, start: number, end: number, headRequest: boolean): ResponseVerdict {
    this.reset();
    let pos = this.parseStatusLine(bytes, start, end);
    if (pos < 0) return this.incompleteOrTooLarge(start, end);
    if (pos === 0) return RESPONSE_INVALID;
    for (;;) {
      if (pos - start > this.limits.maxHeadBytes) return this.invalid('head-too-large');
      if (pos >= end) return this.incompleteOrTooLarge(start, end);
      const first = bytes[pos]!;
      if (first === CR) {
        if (pos + 1 >= end) return this.incompleteOrTooLarge(start, end);
        if (bytes[pos + 1] !== LF) return this.invalid('bare-cr');
        this.headEnd = pos + 2;
        return this.finish(bytes, start, headRequest);
      }
      if (first === LF) return this.invalid('bare-lf');
      if (first === SP || first === HTAB) return this.invalid('obs-fold');
      const next = this.parseHeaderLine(bytes, pos, end);
      if (next < 0) return this.incompleteOrTooLarge(start, end);
      if (next === 0) return RESPONSE_INVALID;
      pos = next;
    }
  }

  private reset(): void {
    this.invalidReason = '';
    this.status = 0;
    this.framing = BODY_NONE;
    this.contentLength = -1;
    this.connectionClose = false;
    this.keepAliveTimeoutMs = -1;
    this.shed = false;
    this.keptRunCount = 0;
    this.lineCount = 0;
    this.transferEncodings = 0;
    this.connectionOptions.reset();
  }

  private invalid(reason: string): typeof RESPONSE_INVALID {
    this.invalidReason = reason;
    return RESPONSE_INVALID;
  }

  private invalidAt(reason: string): 0 {
    this.invalidReason = reason;
    return 0;
  }

  private incompleteOrTooLarge(start: number, end: number): ResponseVerdict {
    return end - start > this.limits.maxHeadBytes ? this.invalid('head-too-large') : RESPONSE_INCOMPLETE;
  }

  /** "HTTP/1.x" SP 3DIGIT [SP reason] CRLF; returns the position after it, -1 for more bytes, 0 when invalid. */
  private parseStatusLine(bytes: Uint8Array, start: number, end: number): number {
    let pos = start;
    for (let i = 0; i < HTTP_1.length; i++, pos++) {
      if (pos === end) return -1;
      if (bytes[pos] !== HTTP_1[i]) return this.invalidAt('status-line');
    }
    if (pos + 5 > end) return -1;
    const minor = bytes[pos]!;
    if (minor !== 0x30 && minor !== 0x31) return this.invalidAt('version');
    this.minorVersion = minor - 0x30;
    // HTTP/1.0 connections are not reused: persistence there is an opt-in this path does not track.
    if (minor === 0x30) this.connectionClose = true;
    if (bytes[pos + 1] !== SP) return this.invalidAt('status-line');
    pos += 2;
    this.statusStart = pos;
    const status = decimalValue(bytes, pos, pos + 3);
    if (status < 100) return this.invalidAt('status');
    this.status = status;
    pos += 3;
    if (bytes[pos] === SP) pos++;
    else if (bytes[pos] !== CR) return this.invalidAt('status-line');
    this.reasonStart = pos;
    while (pos < end && (BYTE_CLASS[bytes[pos]!]! & BACKEND_VALUE) !== 0) pos++;
    if (pos === end) return -1;
    if (bytes[pos] !== CR) return this.invalidAt('reason');
    if (pos + 1 >= end) return -1;
    if (bytes[pos + 1] !== LF) return this.invalidAt('bare-cr');
    this.statusLineEnd = pos + 2;
    return pos + 2;
  }

  private parseHeaderLine(bytes: Uint8Array, lineStart: number, end: number): number {
    const line = this.line;
    const next = scanHeaderLine(bytes, lineStart, end, BACKEND_VALUE, line);
    if (next === LINE_INCOMPLETE) return -1;
    if (next === LINE_REFUSED) return this.invalidAt(line.problem);
    const { nameEnd, valueStart, valueEnd } = line;
    if (this.lineCount === this.limits.maxHeaderCount) return this.invalidAt('too-many-headers');
    const kind = headerKind(bytes, lineStart, nameEnd);
    if (!this.noteHeader(bytes, kind, valueStart, valueEnd)) return 0;
    this.lines[this.lineCount * 3] = lineStart;
    this.lines[this.lineCount * 3 + 1] = nameEnd;
    this.lines[this.lineCount * 3 + 2] = kind;
    this.lineCount++;
    return next;
  }

  private noteHeader(bytes: Uint8Array, kind: number, valueStart: number, valueEnd: number): boolean {
    switch (kind) {
      case HEADER_CONTENT_LENGTH: {
        if (this.contentLength >= 0) return this.refuse('duplicate-content-length');
        const length = decimalValue(bytes, valueStart, valueEnd);
        if (length < 0) return this.refuse('content-length');
        this.contentLength = length;
        return true;
      }
      case HEADER_TRANSFER_ENCODING:
        this.transferEncodings++;
        if (this.transferEncodings > 1) return this.refuse('duplicate-transfer-encoding');
        return lastCodingIsChunked(bytes, valueStart, valueEnd) || this.refuse('transfer-encoding');
      case HEADER_CONNECTION: return this.noteConnectionOptions(bytes, valueStart, valueEnd);
      case HEADER_KEEP_ALIVE:
        this.keepAliveTimeoutMs = keepAliveTimeoutMs(bytes, valueStart, valueEnd);
        return true;
      case HEADER_SHED_MARKER:
        this.shed = true;
        return true;
      default:
        return true;
    }
  }

  private refuse(reason: string): false {
    this.invalidReason = reason;
    return false;
  }

  /** Connection: close, keep-alive, or names of hop-by-hop headers (an Upgrade header is dropped whatever it says). */
  private noteConnectionOptions(bytes: Uint8Array, valueStart: number, valueEnd: number): boolean {
    if (!this.connectionOptions.add(bytes, valueStart, valueEnd)) return this.refuse('connection');
    if (this.connectionOptions.close) this.connectionClose = true;
    return true;
  }

  private finish(bytes: Uint8Array, start: number, headRequest: boolean): ResponseVerdict {
    if (this.headEnd - start > this.limits.maxHeadBytes) return this.invalid('head-too-large');
    const chunked = this.transferEncodings > 0;
    if (chunked && this.contentLength >= 0) return this.invalid('content-length-with-transfer-encoding');
    if (chunked && this.minorVersion === 0) return this.invalid('transfer-encoding-in-http-1.0');
    const status = this.status;
    if (headRequest || status < 200 || status === 204 || status === 304) this.framing = BODY_NONE;
    else if (chunked) this.framing = BODY_CHUNKED;
    else if (this.contentLength >= 0) this.framing = this.contentLength === 0 ? BODY_NONE : BODY_LENGTH;
    else this.framing = BODY_UNTIL_CLOSE;
    this.collectKeptRuns(bytes);
    return RESPONSE_PARSED;
  }

  /** Header lines relayed to the client: all but hop-by-hop ones (Transfer-Encoding stays: the chunked framing is relayed as it is). */
  private collectKeptRuns(bytes: Uint8Array): void {
    let runStart = -1;
    let runEnd = -1;
    for (let i = 0; i < this.lineCount; i++) {
      const lineStart = this.lines[i * 3]!;
      const lineEnd = i + 1 < this.lineCount ? this.lines[i * 3 + 3]! : this.headEnd - 2;
      if (this.isDropped(bytes, i)) continue;
      if (lineStart === runEnd) {
        runEnd = lineEnd;
        continue;
      }
      if (runStart >= 0) this.addRun(runStart, runEnd);
      runStart = lineStart;
      runEnd = lineEnd;
    }
    if (runStart >= 0) this.addRun(runStart, runEnd);
  }

  private isDropped(bytes: Uint8Array, line: number): boolean {
    const kind = this.lines[line * 3 + 2]!;
    if (kind === HEADER_CONNECTION || kind === HEADER_KEEP_ALIVE || kind === HEADER_HOP_BY_HOP || kind === HEADER_UPGRADE) return true;
    // Framing headers stay whatever Connection names: the client needs them to find the body's end.
    if (kind === HEADER_CONTENT_LENGTH || kind === HEADER_TRANSFER_ENCODING) return false;
    const nameStart = this.lines[line * 3]!;
    const nameEnd = this.lines[line * 3 + 1]!;
    return this.connectionOptions.lists(bytes, nameStart, nameEnd);
  }

  private addRun(start: number, end: number): void {
    this.keptRuns[this.keptRunCount * 2] = start;
    this.keptRuns[this.keptRunCount * 2 + 1] = end;
    this.keptRunCount++;
  }
}

/** Transfer-Encoding: a list of codings whose last one must be chunked (RFC 9112 §6.1). */
function lastCodingIsChunked(bytes: Uint8Array, valueStart: number, valueEnd: number): boolean {
  let lastStart = valueStart;
  for (let pos = valueStart; pos < valueEnd; pos++) {
    const byte = bytes[pos]!;
    if (byte === COMMA) lastStart = pos + 1;
    else if ((BYTE_CLASS[byte]! & TOKEN) === 0 && byte !== SP && byte !== HTAB && byte !== 0x3b && byte !== 0x3d && byte !== 0x22) return false;
  }
  while (lastStart < valueEnd && (bytes[lastStart] === SP || bytes[lastStart] === HTAB)) lastStart++;
  return nameIs(bytes, lastStart, valueEnd, TOKEN_CHUNKED) && chunkedAppearsOnce(bytes, valueStart, lastStart);
}

/** chunked must not be applied twice (RFC 9112 §6.1): no earlier coding may be chunked. */
function chunkedAppearsOnce(bytes: Uint8Array, start: number, end: number): boolean {
  for (let pos = start; pos + TOKEN_CHUNKED.length <= end; pos++) {
    if ((bytes[pos]! | 0x20) === 0x63 && equalsIgnoringCase(bytes, pos, TOKEN_CHUNKED)) return false;
  }
  return true;
}

/** The timeout=N parameter of a Keep-Alive header, in milliseconds; -1 without one. */
function keepAliveTimeoutMs(bytes: Uint8Array, valueStart: number, valueEnd: number): number {
  for (let pos = valueStart; pos + TIMEOUT_PARAMETER.length < valueEnd; pos++) {
    if ((pos === valueStart || bytes[pos - 1] === SP || bytes[pos - 1] === COMMA) && equalsIgnoringCase(bytes, pos, TIMEOUT_PARAMETER)) {
      let end = pos + TIMEOUT_PARAMETER.length;
      const digitsStart = end;
      while (end < valueEnd && bytes[end]! >= 0x30 && bytes[end]! <= 0x39) end++;
      const seconds = decimalValue(bytes, digitsStart, end);
      return seconds < 0 ? -1 : seconds * 1000;
    }
  }
  return -1;
}
