// The headers a proxy changes on the way through (RFC 9110 §7.6.1): hop-by-hop headers, and the
// ones named in Connection, are removed in both directions; X-Forwarded-For/-Proto/-Host and a
// request id are added towards the backend.

import type { IncomingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'http2-settings']);

/** Header names listed in a Connection header (they are hop-by-hop too). */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const tokens = text.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== '' && token !== 'close' && token !== 'keep-alive');
  return tokens.length === 0 ? undefined : new Set(tokens);
}

export interface ForwardedFacts {
  clientIp: string;
  /** Keep `TE: trailers` (HTTP/2 upstreams: gRPC requires it; it is the only TE value HTTP/2 allows). */
  keepTeTrailers?: boolean;
  proto: 'http' | 'https';
  requestIdHeader: string;
  requestId: string;
}

/**
 * The request headers for the backend, as a flat [name, value, ...] list (undici's cheapest form).
 * `rawHeaders` keeps the client's order and repeated headers.
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], headers: IncomingHttpHeaders, facts: ForwardedFacts): string[] {
  const extra = connectionTokens(headers.connection);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host = headers.host;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.charCodeAt(0) === 0x3a) {
      // An HTTP/2 pseudo-header: only :authority carries over, as Host (RFC 9113 §8.3.1).
      if (name === ':authority' && host === undefined) {
        host = rawHeaders[i + 1]!;
        out.push('host', host);
      }
      continue;
    }
    const lower = name.toLowerCase();
    if (lower === 'te' && facts.keepTeTrailers === true && rawHeaders[i + 1]!.trim().toLowerCase() === 'trailers') {
      out.push('te', 'trailers');
      continue;
    }
    if (HOP_BY_HOP.has(lower) || (extra !== undefined && extra.has(lower))) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? rawHeaders[i + 1]! : `${forwardedFor}, ${rawHeaders[i + 1]!}`;
      continue;
    }
    if (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host' || lower === facts.requestIdHeader) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  out.push('x-forwarded-for', forwardedFor === undefined ? facts.clientIp : `${forwardedFor}, ${facts.clientIp}`);
  out.push('x-forwarded-proto', facts.proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  out.push(facts.requestIdHeader, facts.requestId);
  return out;
}

/** The response headers for the client, as a flat list for writeHead (repeated headers such as set-cookie kept). */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const extra = connectionTokens(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (extra !== undefined && extra.has(name))) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
}
