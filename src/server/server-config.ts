// Configuration of one `concord server` member. Flags take etcd's names, so operators reuse what
// they know; the same settings can come from the `server:` section of a YAML config file, with
// camelCase keys and units in their names. Flags override the file. Everything is validated up
// front, and each error names the flag (or key) and says what to do.

import { z } from 'zod';
import { readYamlConfigFile } from './config-file.ts';

/** One setting: its etcd flag, its config-file key, and how to read it from a flag string. */
interface SettingSpec {
  flag: string;
  key: keyof ServerSettings;
  description: string;
  parse: 'string' | 'urls' | 'integer' | 'bytes' | 'boolean';
}

export const SERVER_SETTINGS: readonly SettingSpec[] = [
  { flag: 'name', key: 'name', description: 'human-readable name of this member', parse: 'string' },
  { flag: 'data-dir', key: 'dataDir', description: 'directory for the WAL and snapshots', parse: 'string' },
  { flag: 'listen-client-urls', key: 'listenClientUrls', description: 'URLs to serve the etcd v3 gRPC API on', parse: 'urls' },
  { flag: 'advertise-client-urls', key: 'advertiseClientUrls', description: 'client URLs told to clients (default: the listen URLs)', parse: 'urls' },
  { flag: 'listen-peer-urls', key: 'listenPeerUrls', description: 'URLs to accept Raft traffic from peers on', parse: 'urls' },
  { flag: 'initial-advertise-peer-urls', key: 'initialAdvertisePeerUrls', description: 'peer URLs told to the cluster (default: the listen URLs)', parse: 'urls' },
  { flag: 'listen-metrics-urls', key: 'listenMetricsUrls', description: 'URLs to serve /metrics and /health on', parse: 'urls' },
  { flag: 'initial-cluster', key: 'initialCluster', description: 'NAME=PEER_URL,... of the initial members', parse: 'string' },
  { flag: 'initial-cluster-state', key: 'initialClusterState', description: "'new' to bootstrap, 'existing' to join", parse: 'string' },
  { flag: 'initial-cluster-token', key: 'initialClusterToken', description: 'distinguishes clusters bootstrapped with the same members', parse: 'string' },
  { flag: 'heartbeat-interval', key: 'heartbeatIntervalMs', description: 'leader heartbeat interval in milliseconds', parse: 'integer' },
  { flag: 'election-timeout', key: 'electionTimeoutMs', description: 'election timeout in milliseconds', parse: 'integer' },
  { flag: 'snapshot-count', key: 'snapshotCount', description: 'at least about this many applied entries between snapshots, more once the state is large (entries adding up to half the last snapshot); each member at its own phase of the interval', parse: 'integer' },
  { flag: 'auto-compaction-mode', key: 'autoCompactionMode', description: "'periodic' or 'revision'", parse: 'string' },
  { flag: 'auto-compaction-retention', key: 'autoCompactionRetention', description: "periodic: a duration ('1h', '30m') or hours; revision: revisions to keep", parse: 'string' },
  { flag: 'quota-backend-bytes', key: 'quotaBackendBytes', description: 'raise the NOSPACE alarm above this size', parse: 'bytes' },
  { flag: 'max-request-bytes', key: 'maxRequestBytes', description: 'largest client request accepted', parse: 'bytes' },
  { flag: 'max-txn-ops', key: 'maxTxnOps', description: 'most operations in one transaction', parse: 'integer' },
  { flag: 'max-concurrent-streams', key: 'maxConcurrentStreams', description: 'concurrent gRPC streams (calls) per client connection; more wait in the client', parse: 'integer' },
  { flag: 'max-client-connections', key: 'maxClientConnections', description: 'open client connections per client listener; more are closed at once', parse: 'integer' },
  { flag: 'max-watch-streams', key: 'maxWatchStreams', description: 'open Watch streams on this member, all connections together', parse: 'integer' },
  { flag: 'max-watchers', key: 'maxWatchers', description: 'watchers on this member, all streams together', parse: 'integer' },
  { flag: 'max-watches-per-connection', key: 'maxWatchesPerConnection', description: 'watchers one client connection may hold, over all its Watch streams', parse: 'integer' },
  { flag: 'max-watch-stream-queued-bytes', key: 'maxWatchStreamQueuedBytes', description: 'watch responses waiting for one slow stream before it is ended', parse: 'bytes' },
  { flag: 'max-watch-queued-bytes', key: 'maxWatchQueuedBytes', description: 'watch responses waiting for all slow streams together', parse: 'bytes' },
  { flag: 'max-leases', key: 'maxLeases', description: 'leases granted and not yet revoked or expired', parse: 'integer' },
  { flag: 'max-range-keys', key: 'maxRangeKeys', description: 'keys one Range response may carry; larger ranges are refused (page with limit)', parse: 'integer' },
  { flag: 'cert-file', key: 'certFile', description: 'TLS certificate for client connections (https:// client URLs)', parse: 'string' },
  { flag: 'key-file', key: 'keyFile', description: 'TLS key for client connections', parse: 'string' },
  { flag: 'trusted-ca-file', key: 'trustedCaFile', description: 'CA bundle to verify client certificates', parse: 'string' },
  { flag: 'client-cert-auth', key: 'clientCertAuth', description: 'require clients to present a certificate signed by --trusted-ca-file', parse: 'boolean' },
  { flag: 'peer-cert-file', key: 'peerCertFile', description: 'TLS certificate for peer connections (https:// peer URLs), also presented when dialing peers', parse: 'string' },
  { flag: 'peer-key-file', key: 'peerKeyFile', description: 'TLS key for peer connections', parse: 'string' },
  { flag: 'peer-trusted-ca-file', key: 'peerTrustedCaFile', description: 'CA bundle to verify peers\' certificates', parse: 'string' },
  { flag: 'peer-client-cert-auth', key: 'peerClientCertAuth', description: 'require peers to present a certificate signed by --peer-trusted-ca-file', parse: 'boolean' },
];

const DEFAULT_CLIENT_URL = 'http://127.0.0.1:2379';
const DEFAULT_PEER_URL = 'http://127.0.0.1:2380';

/** etcd's limit on the election timeout, kept so configurations move between the two. */
export const MAX_ELECTION_TIMEOUT_MS = 50_000;

/**
 * The resource limits of a member that etcd has no flag for (etcd bounds none of these). Each is
 * refused with a coded error and counted in concord_store_refused_total{limit="<flag>"};
 * docs/store.md, "Resource limits", says why each default is what it is.
 */
export interface StoreLimits {
  /** Per client listener; a connection over it is closed as soon as it is accepted. */
  maxClientConnections: number;
  maxWatchStreams: number;
  maxWatchers: number;
  maxWatchesPerConnection: number;
  /** A stream whose unread responses exceed this is ended (RESOURCE_EXHAUSTED) with the reason. */
  maxWatchStreamQueuedBytes: number;
  /** The member's bound on watch backlogs: past it, the stream that adds to a backlog is ended. */
  maxWatchQueuedBytes: number;
  maxLeases: number;
  maxRangeKeys: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = {
  maxClientConnections: 4096,
  maxWatchStreams: 10_000,
  maxWatchers: 100_000,
  maxWatchesPerConnection: 10_000,
  maxWatchStreamQueuedBytes: 32 * 1024 * 1024,
  maxWatchQueuedBytes: 512 * 1024 * 1024,
  maxLeases: 100_000,
  maxRangeKeys: 100_000,
};

const MAX_UINT32 = 2 ** 32 - 1;

const urlList = z.array(z.string()).min(1);

const settingsSchema = z.object({
  name: z.string().min(1).default('default'),
  dataDir: z.string().min(1).optional(),
  listenClientUrls: urlList.default([DEFAULT_CLIENT_URL]),
  advertiseClientUrls: urlList.optional(),
  listenPeerUrls: urlList.default([DEFAULT_PEER_URL]),
  initialAdvertisePeerUrls: urlList.optional(),
  listenMetricsUrls: urlList.optional(),
  initialCluster: z.string().optional(),
  initialClusterState: z.enum(['new', 'existing']).default('new'),
  initialClusterToken: z.string().min(1).default('concord-cluster'),
  heartbeatIntervalMs: z.number().int().positive().default(100),
  electionTimeoutMs: z.number().int().positive().max(MAX_ELECTION_TIMEOUT_MS).default(1000),
  snapshotCount: z.number().int().positive().default(100_000),
  autoCompactionMode: z.enum(['periodic', 'revision']).default('periodic'),
  autoCompactionRetention: z.string().default('0'),
  quotaBackendBytes: z.number().int().nonnegative().default(2 * 1024 * 1024 * 1024),
  maxRequestBytes: z.number().int().positive().default(1.5 * 1024 * 1024),
  maxTxnOps: z.number().int().positive().default(128),
  // etcd's default, math.MaxUint32: HTTP/2's own ceiling for the setting.
  maxConcurrentStreams: z.number().int().positive().max(MAX_UINT32).default(MAX_UINT32),
  maxClientConnections: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxClientConnections),
  maxWatchStreams: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxWatchStreams),
  maxWatchers: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxWatchers),
  maxWatchesPerConnection: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxWatchesPerConnection),
  maxWatchStreamQueuedBytes: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxWatchStreamQueuedBytes),
  maxWatchQueuedBytes: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxWatchQueuedBytes),
  maxLeases: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxLeases),
  maxRangeKeys: z.number().int().positive().default(DEFAULT_STORE_LIMITS.maxRangeKeys),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  trustedCaFile: z.string().min(1).optional(),
  clientCertAuth: z.boolean().default(false),
  peerCertFile: z.string().min(1).optional(),
  peerKeyFile: z.string().min(1).optional(),
  peerTrustedCaFile: z.string().min(1).optional(),
  peerClientCertAuth: z.boolean().default(false),
}).strict();

export type ServerSettings = z.input<typeof settingsSchema>;

export interface ServerConfig {
  name: string;
  dataDir: string;
  listenClientUrls: URL[];
  advertiseClientUrls: URL[];
  listenPeerUrls: URL[];
  initialAdvertisePeerUrls: URL[];
  listenMetricsUrls: URL[];
  /** Member name -> its peer URLs. */
  initialCluster: Map<string, URL[]>;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  snapshotCount: number;
  autoCompactionMode: 'periodic' | 'revision';
  autoCompactionRetention: string;
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  /** etcd's --max-concurrent-streams: HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS on client connections. */
  maxConcurrentStreams: number;
  limits: StoreLimits;
  /** TLS for clients (https:// client URLs) and peers (https:// peer URLs); paths as given. */
  clientTls: TlsFiles;
  peerTls: TlsFiles;
  /** Deliberate defects for proving `concord chaos` catches them (hidden --bug flag; never in production). */
  bugs: ServerBug[];
}

export interface TlsFiles {
  certFile?: string;
  keyFile?: string;
  trustedCaFile?: string;
  /** Require the other side to present a certificate signed by trustedCaFile (mutual TLS). */
  clientCertAuth: boolean;
}

/**
 * Server-side defects `concord server --bug NAME` switches on, so that `concord chaos` can show it
 * catches each: a checker that cannot fail proves nothing.
 */
export const SERVER_BUGS = {
  'ack-before-fsync': 'acknowledge WAL writes before they reach the disk (they are written a second later)',
  'read-without-read-index': 'serve linearizable reads from local state without a ReadIndex round',
  'follower-lease-expiry': 'followers expire leases on their own clock, outside the log',
} as const;

export type ServerBug = keyof typeof SERVER_BUGS;

export function isServerBug(name: string): name is ServerBug {
  return Object.hasOwn(SERVER_BUGS, name);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'CONCORD_E_CONFIG_INVALID';
}

function flagOf(key: string): string {
  const spec = SERVER_SETTINGS.find((s) => s.key === key);
  return spec ? `--${spec.flag}` : key;
}

/** Parses a byte size such as 1048576, '8GiB', '512MB' or '1.5MiB'. */
export function parseBytes(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$/i.exec(text);
  if (!match) throw new ConfigError(`'${text}' is not a size: use bytes (1048576) or a unit (512MiB, 8GB)`);
  const units: Record<string, number> = {
    b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3, tb: 1e12, tib: 1024 ** 4,
  };
  return Math.floor(Number(match[1]) * units[(match[2] ?? 'b').toLowerCase()]!);
}

function parseUrl(text: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${flag}: '${text}' is not a URL; write it as http://HOST:PORT`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${flag}: '${text}' must use http:// or https://`);
  }
  if (!url.port) throw new ConfigError(`${flag}: '${text}' needs an explicit port, e.g. http://127.0.0.1:2379`);
  if (url.pathname !== '/' || url.search || url.hash) throw new ConfigError(`${flag}: '${text}' must not have a path or query`);
  return url;
}

function parseInitialCluster(text: string): Map<string, URL[]> {
  const members = new Map<string, URL[]>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const equals = part.indexOf('=');
    if (equals <= 0) throw new ConfigError(`--initial-cluster: '${part}' should be NAME=PEER_URL`);
    const name = part.slice(0, equals);
    const url = parseUrl(part.slice(equals + 1), '--initial-cluster');
    members.set(name, [...(members.get(name) ?? []), url]);
  }
  if (members.size === 0) throw new ConfigError('--initial-cluster is empty: give NAME=PEER_URL for every initial member');
  return members;
}

/** Turns flag strings into typed settings, as they would appear in the config file. */
export function settingsFromFlags(flags: Record<string, string | undefined>): ServerSettings {
  const settings: Record<string, unknown> = {};
  for (const spec of SERVER_SETTINGS) {
    const raw = flags[spec.key];
    if (raw === undefined) continue;
    switch (spec.parse) {
      case 'string':
        settings[spec.key] = raw;
        break;
      case 'urls':
        settings[spec.key] = raw.split(',').map((u) => u.trim()).filter(Boolean);
        break;
      case 'integer': {
        if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`--${spec.flag}: '${raw}' is not a whole number`);
        settings[spec.key] = Number(raw);
        break;
      }
      case 'bytes':
        try {
          settings[spec.key] = parseBytes(raw);
        } catch (error) {
          throw new ConfigError(`--${spec.flag}: ${(error as Error).message}`);
        }
        break;
      case 'boolean':
        if (!/^(true|false)$/.test(raw.trim())) throw new ConfigError(`--${spec.flag}: '${raw}' is not true or false`);
        settings[spec.key] = raw.trim() === 'true';
        break;
    }
  }
  return settings as ServerSettings;
}

/** Reads the `server:` section of a Concord YAML config file. */
export function settingsFromFile(path: string): ServerSettings {
  const document = readYamlConfigFile(path);
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) throw new ConfigError(`config file ${path} must be a YAML mapping`);
  const section = (document as Record<string, unknown>).server;
  if (section === undefined) return {};
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new ConfigError(`config file ${path}: 'server' must be a mapping of settings`);
  }
  return section as ServerSettings;
}

/** Merges file and flag settings (flags win), validates them, and derives the defaults etcd derives. */
export function resolveServerConfig(fromFile: ServerSettings, fromFlags: ServerSettings, bugs: readonly string[] = []): ServerConfig {
  const parsed = settingsSchema.safeParse({ ...fromFile, ...fromFlags });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      // Unknown keys can only come from the file (flags are known); zod reports them at the top.
      if (issue.path.length === 0) return `server: ${issue.message}`;
      const key = String(issue.path[0]);
      const path = issue.path.slice(1).map((part) => `[${String(part)}]`).join('');
      return `${flagOf(key)} (server.${key}${path}): ${issue.message}`;
    });
    throw new ConfigError(`invalid server configuration:\n  ${problems.join('\n  ')}`);
  }
  const s = parsed.data;
  const urls = (list: string[], key: string) => list.map((u) => parseUrl(u, flagOf(key)));
  const listenClientUrls = urls(s.listenClientUrls, 'listenClientUrls');
  const listenPeerUrls = urls(s.listenPeerUrls, 'listenPeerUrls');
  const initialAdvertisePeerUrls = s.initialAdvertisePeerUrls ? urls(s.initialAdvertisePeerUrls, 'initialAdvertisePeerUrls') : listenPeerUrls;
  if (s.heartbeatIntervalMs * 5 > s.electionTimeoutMs) {
    throw new ConfigError(
      `--election-timeout (${s.electionTimeoutMs} ms) should be at least 5 times --heartbeat-interval (${s.heartbeatIntervalMs} ms), ` +
      'so one lost heartbeat does not start an election (etcd recommends 10 times)');
  }
  const initialCluster = s.initialCluster
    ? parseInitialCluster(s.initialCluster)
    : new Map([[s.name, initialAdvertisePeerUrls]]);
  if (!initialCluster.has(s.name)) {
    throw new ConfigError(`--initial-cluster has no member named '${s.name}' (--name): add ${s.name}=PEER_URL to it`);
  }
  const ownInitialUrls = initialCluster.get(s.name)!.map((url) => url.origin).sort().join(',');
  const advertised = initialAdvertisePeerUrls.map((url) => url.origin).sort().join(',');
  if (ownInitialUrls !== advertised) {
    throw new ConfigError(`--initial-cluster gives ${s.name}=${ownInitialUrls}, but --initial-advertise-peer-urls (or --listen-peer-urls) is ${advertised}: they must match`);
  }
  for (const bug of bugs) {
    if (!isServerBug(bug)) throw new ConfigError(`--bug: '${bug}' is not a known defect (${Object.keys(SERVER_BUGS).join(', ')})`);
  }
  const tlsFiles = (certFile: string | undefined, keyFile: string | undefined, trustedCaFile: string | undefined, clientCertAuth: boolean, prefix: string): TlsFiles => {
    if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError(`--${prefix}cert-file and --${prefix}key-file go together: give both or neither`);
    if (clientCertAuth && !trustedCaFile) throw new ConfigError(`--${prefix}client-cert-auth needs --${prefix}trusted-ca-file to verify certificates with`);
    return { certFile, keyFile, trustedCaFile, clientCertAuth };
  };
  const clientTls = tlsFiles(s.certFile, s.keyFile, s.trustedCaFile, s.clientCertAuth, '');
  const peerTls = tlsFiles(s.peerCertFile, s.peerKeyFile, s.peerTrustedCaFile, s.peerClientCertAuth, 'peer-');
  const needsCert = (urls: URL[], tls: TlsFiles, flag: string, prefix: string) => {
    const secure = urls.find((url) => url.protocol === 'https:');
    if (secure && !tls.certFile) throw new ConfigError(`${flag} ${secure.href} is https://, so --${prefix}cert-file and --${prefix}key-file are needed`);
  };
  needsCert(listenClientUrls, clientTls, '--listen-client-urls', '');
  needsCert(listenPeerUrls, peerTls, '--listen-peer-urls', 'peer-');
  return {
    name: s.name,
    dataDir: s.dataDir ?? `${s.name}.concord`,
    listenClientUrls,
    advertiseClientUrls: s.advertiseClientUrls ? urls(s.advertiseClientUrls, 'advertiseClientUrls') : listenClientUrls,
    listenPeerUrls,
    initialAdvertisePeerUrls,
    listenMetricsUrls: s.listenMetricsUrls ? urls(s.listenMetricsUrls, 'listenMetricsUrls') : [],
    initialCluster,
    initialClusterState: s.initialClusterState,
    initialClusterToken: s.initialClusterToken,
    heartbeatIntervalMs: s.heartbeatIntervalMs,
    electionTimeoutMs: s.electionTimeoutMs,
    snapshotCount: s.snapshotCount,
    autoCompactionMode: s.autoCompactionMode,
    autoCompactionRetention: s.autoCompactionRetention,
    quotaBackendBytes: s.quotaBackendBytes,
    maxRequestBytes: s.maxRequestBytes,
    maxTxnOps: s.maxTxnOps,
    maxConcurrentStreams: s.maxConcurrentStreams,
    limits: {
      maxClientConnections: s.maxClientConnections,
      maxWatchStreams: s.maxWatchStreams,
      maxWatchers: s.maxWatchers,
      maxWatchesPerConnection: s.maxWatchesPerConnection,
      maxWatchStreamQueuedBytes: s.maxWatchStreamQueuedBytes,
      maxWatchQueuedBytes: s.maxWatchQueuedBytes,
      maxLeases: s.maxLeases,
      maxRangeKeys: s.maxRangeKeys,
    },
    clientTls,
    peerTls,
    bugs: [...bugs] as ServerBug[],
  };
}
