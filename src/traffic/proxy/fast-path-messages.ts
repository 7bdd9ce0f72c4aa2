// What the fast path makes of a parsed request head, and the responses it writes itself:
// * the request for the backend: the client's request line and header lines copied as they are,
//   minus hop-by-hop and X-Forwarded-* lines (the parser's kept runs), plus X-Forwarded-For
//   (appended to the client's), X-Forwarded-Proto, X-Forwarded-Host and the request id: the same
//   headers forwarded-headers.ts produces on the Node path;
// * the headers as node:http would present them (IncomingHttpHeaders), for admission control and
//   hash keys, built only when one of them asks;
// * the proxy's own responses (errors, admission refusals) in HTTP/1.1.

import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import { FIELD_KIND, FIELD_LINE_START, FIELD_NAME_END, FIELD_VALUE_END, FIELD_VALUE_START, HEADER_FIELDS, type RequestHeadParser } from './http1/request-head.ts';
import { HEADER_X_FORWARDED_FOR } from './http1/syntax.ts';

const CRLF = '\r\n';

/**
 * Builds the request heads for the backend for one client connection: the lines the proxy adds
 * that do not change from request to request on a connection are made once.
 */
export class UpstreamHeadBuilder {
  private readonly clientIp: string;
  private readonly proto: string;
  /** "x-forwarded-for: IP", "x-forwarded-proto: P" and the start of x-forwarded-host, for requests without an X-Forwarded-For of their own. */
  private readonly forwardedLines: Buffer;
  /** The end of the x-forwarded-host line and the start of the request id's. */
  private readonly requestIdLineStart: Buffer;

  constructor(clientIp: string, proto: 'http' | 'https', requestIdHeader: string) {
    this.clientIp = clientIp;
    this.proto = proto;
    this.forwardedLines = Buffer.from(`x-forwarded-for: ${clientIp}${CRLF}x-forwarded-proto: ${proto}${CRLF}x-forwarded-host: `, 'latin1');
    this.requestIdLineStart = Buffer.from(`${CRLF}${requestIdHeader}: `, 'latin1');
  }

  /** The head for the backend, from the head the parser just parsed in `bytes` (starting at `start`). */
  build(bytes: Buffer, start: number, parser: RequestHeadParser, requestId: string): Buffer {
    const forwarded = this.forwardedLinesFor(bytes, parser);
    let length = parser.requestLineEnd - start + forwarded.length + (parser.hostEnd - parser.hostStart) + this.requestIdLineStart.length + requestId.length + 4;
    for (let i = 0; i < parser.keptRunCount; i++) length += parser.keptRuns[i * 2 + 1]! - parser.keptRuns[i * 2]!;
    const out = Buffer.allocUnsafe(length);
    let at = copyBytes(bytes, start, parser.requestLineEnd, out, 0);
    for (let i = 0; i < parser.keptRunCount; i++) at = copyBytes(bytes, parser.keptRuns[i * 2]!, parser.keptRuns[i * 2 + 1]!, out, at);
    out.set(forwarded, at);
    at = copyBytes(bytes, parser.hostStart, parser.hostEnd, out, at + forwarded.length);
    out.set(this.requestIdLineStart, at);
    at += this.requestIdLineStart.length;
    // The id is ASCII: generated, or taken from a header the parser checked to be visible ASCII.
    for (let i = 0; i < requestId.length; i++) out[at++] = requestId.charCodeAt(i);
    out[at++] = 0x0d;
    out[at++] = 0x0a;
    out[at++] = 0x0d;
    out[at++] = 0x0a;
    if (at !== length) throw new Error(`bug: upstream head is ${at} bytes, ${length} expected`);
    return out;
  }

  /** X-Forwarded-For carries on what the client sent, if anything (RFC 7239's predecessor convention). */
  private forwardedLinesFor(bytes: Buffer, parser: RequestHeadParser): Buffer {
    let earlier: string | undefined;
    for (let i = 0; i < parser.headerCount; i++) {
      const fields = i * HEADER_FIELDS;
      if (parser.headers[fields + FIELD_KIND] !== HEADER_X_FORWARDED_FOR) continue;
      const value = bytes.toString('latin1', parser.headers[fields + FIELD_VALUE_START]!, parser.headers[fields + FIELD_VALUE_END]!);
      earlier = earlier === undefined ? value : `${earlier}, ${value}`;
    }
    if (earlier === undefined) return this.forwardedLines;
    return Buffer.from(`x-forwarded-for: ${earlier}, ${this.clientIp}${CRLF}x-forwarded-proto: ${this.proto}${CRLF}x-forwarded-host: `, 'latin1');
  }
}

/** Copies source[from, to) into target at `at`; returns the position after. Short ranges (most header lines) are copied in JS, which beats a native call. */
function copyBytes(source: Uint8Array, from: number, to: number, target: Uint8Array, at: number): number {
  const length = to - from;
  if (length > 64) {
    target.set(source.subarray(from, to), at);
    return at + length;
  }
  for (let i = 0; i < length; i++) target[at + i] = source[from + i]!;
  return at + length;
}

/** Headers whose duplicates node:http discards (it keeps the first), as its IncomingMessage does. */
const SINGLE_VALUE_HEADERS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

/** The parsed head's headers as node:http presents them: lowercase names, repeated ones joined (set-cookie: a list; cookie: with '; '). */
export function nodeStyleHeaders(bytes: Buffer, parser: RequestHeadParser): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < parser.headerCount; i++) {
    const fields = i * HEADER_FIELDS;
    const name = bytes.toString('latin1', parser.headers[fields + FIELD_LINE_START]!, parser.headers[fields + FIELD_NAME_END]!).toLowerCase();
    const value = bytes.toString('latin1', parser.headers[fields + FIELD_VALUE_START]!, parser.headers[fields + FIELD_VALUE_END]!);
    const existing = headers[name];
    if (existing === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(existing)) existing.push(value);
    else if (!SINGLE_VALUE_HEADERS.has(name)) headers[name] = `${existing}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return headers;
}

/**
 * A response the proxy writes itself. Header values are checked as node:http checks them (a value
 * with CR or LF from an admission-control library must not split the response); an invalid one is
 * left out. A response to HEAD has no body.
 */
export function ownResponse(status: number, headers: Readonly<Record<string, string | number>>, body: string, headRequest: boolean, close: boolean): Buffer {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}${CRLF}`;
  for (const name in headers) {
    const value = String(headers[name]);
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      continue;
    }
    const lower = name.toLowerCase();
    // Framing and persistence are the proxy's to say.
    if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue;
    head += `${name}: ${value}${CRLF}`;
  }
  head += `content-length: ${Buffer.byteLength(body)}${CRLF}`;
  if (close) head += `connection: close${CRLF}`;
  head += CRLF;
  return Buffer.from(headRequest ? head : head + body, 'utf8');
}
