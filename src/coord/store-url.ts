// Where the coordination store is: the `--store` flag (`etcd://host:2379,host2:2379`, or
// `etcds://...` for TLS) and etcdctl's `--endpoints` form (`host:2379,host2:2379`, each optionally
// `http://` or `https://`), parsed into one shape with errors that say what is wrong and show the
// expected form. The TLS files are etcdctl's flags (--cacert, --cert, --key).

import { CoordError } from './coord-store.ts';

/** More endpoints than this is a mistake (a cluster has 1, 3 or 5 members; a few proxies in front at most). */
export const MAX_STORE_ENDPOINTS = 16;

export interface StoreTlsFiles {
  /** The CA that signed the members' certificates; absent: the system's trusted roots. */
  caFile?: string;
  /** A client certificate and its key, for members that require one (mutual TLS); both or neither. */
  certFile?: string;
  keyFile?: string;
}

export interface StoreLocation {
  /** host:port, one per member. */
  endpoints: string[];
  /** Present when the store is reached over TLS. */
  tls?: StoreTlsFiles;
}

export const STORE_URL_EXAMPLE = 'etcd://127.0.0.1:2379,10.0.0.2:2379 (or etcds://... with --cacert for TLS)';

function invalid(message: string): CoordError {
  return new CoordError('CONCORD_E_STORE_URL_INVALID', `${message}; expected e.g. ${STORE_URL_EXAMPLE}`);
}

/** `host:port`, `[v6]:port`; the port is required (etcd has no default a client may assume here). */
function parseEndpoint(text: string, original: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (match === null) throw invalid(`'${text}' in '${original}' is not host:port`);
  const port = Number(match[2]);
  if (port < 1 || port > 65_535) throw invalid(`port ${match[2]} in '${original}' is outside 1-65535`);
  return `${match[1]}:${port}`;
}

type Scheme = 'plain' | 'tls';

/** One element of an etcdctl-style list: `host:port`, `http://host:port` or `https://host:port`. */
function splitScheme(element: string): { scheme: Scheme | undefined; rest: string } {
  const match = /^([a-z]+):\/\/(.*)$/.exec(element);
  if (match === null) return { scheme: undefined, rest: element };
  if (match[1] === 'http') return { scheme: 'plain', rest: match[2]! };
  if (match[1] === 'https') return { scheme: 'tls', rest: match[2]! };
  throw invalid(`unknown scheme '${match[1]}://' in '${element}'`);
}

/**
 * Parses `--store` / `--endpoints`. `etcd://` and `etcds://` name the scheme once for the list;
 * a bare list may prefix each element with http:// or https:// (as etcdctl accepts), all alike.
 */
export function parseStoreLocation(text: string, tls: StoreTlsFiles = {}): StoreLocation {
  const trimmed = text.trim();
  if (trimmed === '') throw invalid('the store location is empty');
  let scheme: Scheme | undefined;
  let list = trimmed;
  const urlMatch = /^(etcds?):\/\/(.*)$/.exec(trimmed);
  if (urlMatch !== null) {
    scheme = urlMatch[1] === 'etcds' ? 'tls' : 'plain';
    list = urlMatch[2]!;
  } else if (/^[a-z]+:\/\/[^,]*$/.test(trimmed) && !/^https?:\/\//.test(trimmed)) {
    throw invalid(`unknown scheme in '${trimmed}'`);
  }
  const endpoints: string[] = [];
  for (const element of list.split(',').map((part) => part.trim())) {
    if (element === '') throw invalid(`'${trimmed}' has an empty endpoint (a stray comma?)`);
    let rest = element;
    if (urlMatch === null) {
      const split = splitScheme(element);
      if (split.scheme !== undefined && scheme !== undefined && split.scheme !== scheme) throw invalid(`'${trimmed}' mixes http:// and https:// endpoints`);
      scheme ??= split.scheme;
      rest = split.rest;
    }
    const endpoint = parseEndpoint(rest.replace(/\/$/, ''), trimmed);
    if (endpoints.includes(endpoint)) throw invalid(`endpoint ${endpoint} appears twice in '${trimmed}'`);
    endpoints.push(endpoint);
  }
  if (endpoints.length > MAX_STORE_ENDPOINTS) throw invalid(`'${trimmed}' names ${endpoints.length} endpoints; at most ${MAX_STORE_ENDPOINTS}`);
  return withTls({ endpoints }, scheme ?? 'plain', tls, trimmed);
}

function withTls(location: StoreLocation, scheme: Scheme, tls: StoreTlsFiles, original: string): StoreLocation {
  const given = Object.entries(tls).filter(([, value]) => value !== undefined).map(([name]) => name);
  if (scheme === 'plain') {
    if (given.length > 0) {
      throw new CoordError('CONCORD_E_STORE_URL_INVALID', `TLS files (--cacert/--cert/--key) were given but '${original}' is plain text: write etcds://... (or https://) to use TLS, or drop the files`);
    }
    return location;
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new CoordError('CONCORD_E_STORE_URL_INVALID', 'a client certificate needs its key: give --cert and --key together (or neither)');
  }
  const files: StoreTlsFiles = {};
  if (tls.caFile !== undefined) files.caFile = tls.caFile;
  if (tls.certFile !== undefined) files.certFile = tls.certFile;
  if (tls.keyFile !== undefined) files.keyFile = tls.keyFile;
  return { ...location, tls: files };
}

/** The canonical text of a location (for logs and status): `etcd://a:1,b:2` or `etcds://...`. */
export function formatStoreLocation(location: StoreLocation): string {
  return `${location.tls === undefined ? 'etcd' : 'etcds'}://${location.endpoints.join(',')}`;
}
