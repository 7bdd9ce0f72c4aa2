// `concord server`: one member of the coordination store. It resolves who it is (a new cluster's
// member, a member joining a running cluster, or a restart), recovers its data dir, runs Raft over
// the WAL and the peer transport, applies etcd commands to the MVCC state machine, and serves the
// etcd v3 gRPC API plus /metrics and /health.

import { Server } from '@grpc/grpc-js';
import type { ServerCredentials } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { Message } from '../consensus/types.ts';
import { SeededRandom } from '../random/seeded-random.ts';
import type { ApplyResult } from '../kv/state-machine.ts';
import { registerEtcdServices } from '../api/etcd/services.ts';
import { UnaryFastPath } from '../api/etcd/unary-fast-path.ts';
import { errorFromPeer } from '../api/etcd/grpc-errors.ts';
import type { EtcdServiceContext } from '../api/etcd/service-context.ts';
import type { HeaderSource } from '../api/etcd/wire.ts';
import { ServerMetrics } from '../observe/server-metrics.ts';
import { NodeFileSystem } from '../storage/file-system.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { closeDataDir, persistSnapshot, recover, toMemoryStorage } from '../storage/data-dir.ts';
import type { RecoveredDataDir } from '../storage/data-dir.ts';
import { PeerTransport } from '../transport/peer-transport.ts';
import type { TransportLimits } from '../transport/transport-options.ts';
import { ClientListener } from './client-listener.ts';
import { ClusterAdmin } from './cluster-admin.ts';
import { APPLIED_REQUESTS_WINDOW } from './data-dir-bootstrap.ts';
import { startFollowerLeaseExpiryBug } from './follower-lease-expiry-bug.ts';
import { resolveIdentity } from './member-identity.ts';
import type { JoinAnswer, JoinAnswerMember } from './member-identity.ts';
import type { MemberInfo } from './member-registry.ts';
import { createMetricsHttpServer } from './metrics-http.ts';
import { RaftMember } from './raft-member.ts';
import type { DurableLog, MemberTimers } from './raft-member.ts';
import type { ServerConfig } from './server-config.ts';
import { ConfigError } from './server-config.ts';
import { nativeCrc32cUpdate } from './native-crc32c.ts';
import { KvReplicatedStateMachine, StoreBackend } from './store-member.ts';
import { startAutoCompaction } from './auto-compaction-loop.ts';
import { loadTls } from './tls-config.ts';
import { parseAutoCompaction } from '../kv/auto-compaction.ts';
import { minLeaseTtlSeconds } from '../kv/lease.ts';

export { APPLIED_REQUESTS_WINDOW };

/** Proposals waiting at once before new ones are refused with "too many requests". */
const MAX_PENDING_PROPOSALS = 10_000;
/** Entries kept behind a snapshot, as etcd's SnapshotCatchUpEntries. */
const KEPT_ENTRIES_AFTER_SNAPSHOT = 5_000;
/** gRPC framing on top of the request itself, as etcd allows (grpcOverheadBytes). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** Bytes of entries in flight to one follower (etcd's MaxInflightMsgs × MaxSizePerMsg keeps it near this). */
const MAX_INFLIGHT_BYTES_PER_FOLLOWER = 32 * 1024 * 1024;
/** etcd's request timeout: 5 s plus two election timeouts (ServerConfig.ReqTimeout). */
const REQUEST_TIMEOUT_BASE_MS = 5_000;
/** How long a member that was removed keeps answering (its last client, the leader's followers) before it stops. */
const REMOVED_GRACE_MS = 1_000;
/** How long --initial-cluster-state existing keeps asking the given members for the membership. */
const JOIN_TIMEOUT_MS = 30_000;
/** The 'ack-before-fsync' defect holds each WAL write back this long (a crash in between loses it). */
const ACK_BEFORE_FSYNC_DELAY_MS = 1_000;

export interface StoreServerLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface StoreServerOptions {
  fs?: FileSystem;
  logger?: StoreServerLogger;
  /** Overrides of the etcd services' intervals and limits (tests shorten them). */
  serviceOptions?: EtcdServiceContext['serviceOptions'];
  transportLimits?: Partial<TransportLimits>;
  /** Called once this member has been removed from the cluster and has stopped. Default: nothing more. */
  onRemoved?: () => void;
  /**
   * Serve KV's unary calls on the HTTP/2 stream before grpc-js (unary-fast-path.ts). Default true;
   * false lets grpc-js serve every call (tests compare the two).
   */
  unaryFastPath?: boolean;
  /**
   * With the fast path, serve plaintext client connections with the member's own HTTP/2 server
   * (client-front.ts). Default true; false keeps them on node:http2 (tests compare the two).
   */
  ownHttp2?: boolean;
}

const realTimers: MemberTimers = {
  nowMs: () => Date.now(),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  nextTurn: (callback) => setImmediate(callback),
};

interface ServerParts {
  config: ServerConfig;
  clusterId: bigint;
  memberId: bigint;
  member: RaftMember<ApplyResult>;
  transport: PeerTransport;
  metrics: ServerMetrics;
  grpc: Server;
  clientAddresses: string[];
  clientListeners: ClientListener[];
  metricsServers: HttpServer[];
  fastPath: UnaryFastPath | undefined;
  recovered: RecoveredDataDir;
  cleanups: (() => void | Promise<void>)[];
  logger: StoreServerLogger;
}

export class StoreServer {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly member: RaftMember<ApplyResult>;
  readonly transport: PeerTransport;
  readonly metrics: ServerMetrics;
  /** The addresses actually bound (port 0 in the config resolves to a real port). */
  readonly clientAddresses: string[];
  /** host:port of each /metrics and /health listener actually bound. */
  readonly metricsAddresses: string[];
  /** host:port of each peer listener actually bound. */
  readonly peerAddresses: string[];
  private readonly config: ServerConfig;
  private readonly grpc: Server;
  private readonly clientListeners: ClientListener[];
  private readonly metricsServers: HttpServer[];
  private readonly fastPath: UnaryFastPath | undefined;
  private readonly recovered: RecoveredDataDir;
  private readonly cleanups: (() => void | Promise<void>)[];
  private readonly logger: StoreServerLogger;
  private stopping: Promise<void> | undefined;

  private constructor(parts: ServerParts) {
    this.config = parts.config;
    this.cleanups = parts.cleanups;
    this.clusterId = parts.clusterId;
    this.memberId = parts.memberId;
    this.member = parts.member;
    this.transport = parts.transport;
    this.metrics = parts.metrics;
    this.grpc = parts.grpc;
    this.clientAddresses = parts.clientAddresses;
    this.clientListeners = parts.clientListeners;
    this.metricsServers = parts.metricsServers;
    this.fastPath = parts.fastPath;
    this.metricsAddresses = parts.metricsServers.map((server) => {
      const address = server.address();
      return typeof address === 'object' && address ? `${address.address}:${address.port}` : String(address);
    });
    this.peerAddresses = [...parts.transport.listenAddresses];
    this.recovered = parts.recovered;
    this.logger = parts.logger;
  }

  /** KV calls served by the unary fast path instead of grpc-js, since the start. */
  fastPathCalls(): number {
    return this.fastPath?.callsServed ?? 0;
  }

  static async start(config: ServerConfig, options: StoreServerOptions = {}): Promise<StoreServer> {
    const logger = options.logger ?? consoleLogger(config.name);
    // Validate the auto-compaction flags and read the TLS files before touching the data dir.
    parseAutoCompaction(config.autoCompactionMode, config.autoCompactionRetention);
    const tls = loadTls(config);
    const fs = options.fs ?? new NodeFileSystem();
    const identity = await resolveIdentity(config, {
      fs, dialTls: tls.peerDial, joinTimeoutMs: JOIN_TIMEOUT_MS, log: (message) => logger.info(message),
    });
    const recovered = await recover(fs, config.dataDir, identity.expected, {
      wal: { onWarning: (message) => logger.warn(message) },
    });
    for (const warning of recovered.warnings) logger.warn(warning);
    const clusterId = identity.expected?.clusterId ?? recovered.metadata!.clusterId;
    const memberId = identity.expected?.memberId ?? recovered.metadata!.memberId;
    try {
      return await StoreServer.startRecovered({
        config, recovered, clusterId, memberId, logger, options, tls, joinedMembers: identity.joinedMembers ?? [],
      });
    } catch (error) {
      await closeDataDir(recovered);
      throw namingSnapshotFile(error, recovered.snapshotPath);
    }
  }

  private static async startRecovered(setup: {
    config: ServerConfig; recovered: RecoveredDataDir; clusterId: bigint; memberId: bigint; logger: StoreServerLogger;
    options: StoreServerOptions; tls: ReturnType<typeof loadTls>; joinedMembers: JoinAnswerMember[];
  }): Promise<StoreServer> {
    const { config, recovered, clusterId, memberId, logger, options, tls } = setup;
    const bugs = new Set(config.bugs);
    for (const bug of bugs) logger.warn(`DEFECT SWITCHED ON (--bug ${bug}): this member is deliberately broken, for testing only`);
    const metrics = new ServerMetrics();
    const storage = toMemoryStorage(recovered);
    const electionTicks = Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    const machine = new KvReplicatedStateMachine({
      quotaBackendBytes: config.quotaBackendBytes,
      maxTxnOps: config.maxTxnOps,
      // etcd's minimum lease TTL: a lease must outlive a leader election (1.5 election timeouts).
      minLeaseTtlSeconds: minLeaseTtlSeconds(electionTicks, config.heartbeatIntervalMs),
      checksum: nativeCrc32cUpdate,
    });
    const random = new SeededRandom(Number(memberId % BigInt(Number.MAX_SAFE_INTEGER)) ^ Date.now());
    const cleanups: (() => void | Promise<void>)[] = [];
    const clientListeners: ClientListener[] = [];
    // Members that a joining member learned of, until its first snapshot brings the member list.
    let joinedMembers = setup.joinedMembers;
    const started: { server?: StoreServer } = {};
    let removedWhileStarting = false;
    let removed = false;
    const onRemoved = (how: string) => {
      if (removed && started.server) return;
      removed = true;
      logger.error(`this member ${memberId.toString(16)} ${how}: it stops now. Its data dir can be deleted; to rejoin, add it again as a new member.`);
      const server = started.server;
      if (!server) {
        removedWhileStarting = true;
        return;
      }
      setTimeout(() => {
        void server.stop({ handOverLeadership: false }).then(() => options.onRemoved?.());
      }, REMOVED_GRACE_MS);
    };
    const transport: PeerTransport = new PeerTransport({
      selfId: memberId,
      clusterId,
      listenUrls: config.listenPeerUrls,
      random,
      logger,
      limits: options.transportLimits,
      serverTls: tls.peerServer,
      dialTls: tls.peerDial,
      localAddress: outgoingAddress(config),
      handler: {
        onMessage: (message: Message) => {
          try {
            member.step(message);
          } catch (error) {
            logger.warn(`dropped ${message.type} from ${message.from.toString(16)}: ${(error as Error).message}`);
          }
        },
        onUnreachable: (peer) => member.reportUnreachable(peer),
        onSnapshotStatus: (peer, delivered) => member.reportSnapshot(peer, delivered),
        memberStatus: (id) => {
          if (member.memberList().some((known) => known.id === id)) return 'member';
          if (member.isRemovedMember(id)) return 'removed';
          return joinedMembers.some((known) => BigInt(known.id) === id) ? 'member' : 'unknown';
        },
        onRemovedFromCluster: (text) => onRemoved(`was removed from the cluster (a peer said: ${text})`),
        onRpc: (_from, method, params) => admin.serveRpc(method, params),
        onJoinRequest: (): JoinAnswer => ({
          clusterId: clusterId.toString(),
          members: member.memberList().map((known) => ({ ...known, id: known.id.toString() })),
          removed: [],
        }),
      },
    });
    const durableLog = createDurableLog(recovered, metrics, bugs.has('ack-before-fsync'), logger);
    const member: RaftMember<ApplyResult> = new RaftMember<ApplyResult>({
      id: memberId,
      storage,
      durableLog,
      stateMachine: machine,
      transport: { send: (messages) => transport.send(messages) },
      timers: realTimers,
      random,
      tickIntervalMs: config.heartbeatIntervalMs,
      electionTicks,
      heartbeatTicks: 1,
      snapshotEveryEntries: config.snapshotCount,
      keptEntriesAfterSnapshot: KEPT_ENTRIES_AFTER_SNAPSHOT,
      // At least etcd's request timeout (5 s plus two election timeouts): a write etcd would still
      // wait for under load is not failed sooner here.
      proposalTimeoutMs: Math.max(REQUEST_TIMEOUT_BASE_MS + 2 * config.electionTimeoutMs, 5 * config.electionTimeoutMs),
      maxPendingProposals: MAX_PENDING_PROPOSALS,
      appliedRequestsWindow: APPLIED_REQUESTS_WINDOW,
      raftOverrides: { maxInflightBytes: MAX_INFLIGHT_BYTES_PER_FOLLOWER },
      onLeaderChange: (leader, term) => {
        metrics.hasLeader.set(leader === 0n ? 0 : 1);
        metrics.isLeader.set(leader === memberId ? 1 : 0);
        metrics.term.set(term);
        metrics.leaderChanges.inc();
        logger.info(`leader is now ${leader === 0n ? 'unknown' : leader.toString(16)} in term ${term}`);
        for (const listener of leaderListeners) listener(leader, term);
      },
      onMembershipChange: (members) => {
        if (members.length > 0) joinedMembers = [];
        transport.setPeers(peerUrlsOf(members, joinedMembers));
      },
      onRemoved: () => onRemoved('has been removed from the cluster'),
      onSnapshotSaved: ({ index, dataBytes, encodeMs, saveMs }) => {
        logger.info(`saved snapshot at index ${index}: ${(dataBytes / 1e6).toFixed(1)} MB, encoded in ${encodeMs.toFixed(0)} ms, written in ${saveMs.toFixed(0)} ms`);
      },
      onFatal: (error) => logger.error(`stopping: ${error.message}`),
    });
    const leaderListeners = new Set<(leader: bigint, term: number) => void>();
    const requestTimeoutMs = REQUEST_TIMEOUT_BASE_MS + 2 * config.electionTimeoutMs;
    const admin: ClusterAdmin = new ClusterAdmin({
      member: member as RaftMember<unknown>,
      clusterToken: config.initialClusterToken,
      callPeer: (peer, method, params, timeoutMs) => transport.rpc(peer, method, params, timeoutMs),
      isConnected: (peer) => transport.isConnected(peer),
      requestTimeoutMs,
      nowMs: () => Date.now(),
      errorFromPeer,
    });
    try {
      await transport.start();
    } catch (error) {
      await transport.stop();
      throw new ConfigError(`cannot listen for peers on ${config.listenPeerUrls.map((url) => url.host).join(', ')}: ${(error as Error).message}`);
    }
    transport.setPeers(peerUrlsOf(member.memberList(), joinedMembers));
    cleanups.push(() => transport.stop());

    const headers: HeaderSource = { clusterId, memberId, raftTerm: () => member.term() };
    const maxReceiveMessageBytes = config.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    const grpc = new Server({
      'grpc.max_receive_message_length': maxReceiveMessageBytes,
      'grpc.max_send_message_length': 2 ** 31 - 1,
      'grpc.max_concurrent_streams': config.maxConcurrentStreams,
      // Channelz (gRPC's introspection service) is never served here, but its bookkeeping runs on
      // every call when enabled (grpc-js's default): counters and Date.now() per call and message.
      'grpc.enable_channelz': 0,
    });
    const context: EtcdServiceContext = {
      backend: new StoreBackend(member, machine, config.maxRequestBytes, metrics, bugs.has('read-without-read-index')),
      headers,
      stateMachine: () => machine.kv,
      member: {
        memberId,
        clusterId,
        isLeader: () => member.isLeader(),
        leaderId: () => member.leaderId(),
        term: () => member.term(),
        appliedIndex: () => member.appliedIndex(),
        committedIndex: () => member.committedIndex(),
        membership: () => member.membership(),
        writesDisabledReason: () => member.writesDisabledReason,
      },
      events: {
        onApplied: (listener) => machine.onApplied(listener),
        onRestored: (listener) => machine.onRestored(listener),
        onLeaderChange: (listener) => {
          leaderListeners.add(listener);
          return () => leaderListeners.delete(listener);
        },
      },
      config,
      serviceOptions: options.serviceOptions,
      metrics,
      clock: {
        nowMs: () => Date.now(),
        setInterval: (callback, ms) => setInterval(callback, ms),
        clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
      },
      cluster: admin,
      onStop: (cleanup) => cleanups.push(cleanup),
    };
    const fastPathMethods = registerEtcdServices(grpc, context);
    const fastPath = options.unaryFastPath === false ? undefined : new UnaryFastPath(fastPathMethods, { maxReceiveMessageBytes });
    const autoCompaction = parseAutoCompaction(config.autoCompactionMode, config.autoCompactionRetention);
    if (autoCompaction) startAutoCompaction(autoCompaction, context, logger);
    if (bugs.has('follower-lease-expiry')) {
      cleanups.push(startFollowerLeaseExpiryBug({ machine: () => machine.kv, isLeader: () => member.isLeader(), nowMs: () => Date.now() }));
    }
    metrics.sampleAtScrape({
      pendingProposals: () => member.pendingProposalCount(),
      applyLagEntries: () => member.committedIndex() - member.appliedIndex(),
      dbSizeBytes: () => machine.kv.sizeBytes(),
      peersConnected: () => member.memberList().filter((known) => known.id !== memberId && transport.isConnected(known.id)).length,
      peerMessagesSent: () => transport.stats.messagesSent,
      peerMessagesDropped: () => transport.stats.messagesDropped,
    });
    const clientAddresses: string[] = [];
    const metricsServers: Awaited<ReturnType<typeof listenHttp>>[] = [];
    try {
      for (const url of config.listenClientUrls) {
        const listener = await ClientListener.listen({
          grpc,
          credentials: url.protocol === 'https:' ? tls.clientCredentials : insecure(),
          host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: Number(url.port),
          maxClientConnections: config.limits.maxClientConnections,
          metrics,
          warn: (message) => logger.warn(message),
          fastPath,
          tls: url.protocol === 'https:',
          maxConcurrentStreams: config.maxConcurrentStreams,
          ownHttp2: options.ownHttp2,
        });
        clientListeners.push(listener);
        clientAddresses.push(`${url.hostname}:${listener.address.slice(listener.address.lastIndexOf(':') + 1)}`);
      }
      for (const url of config.listenMetricsUrls) {
        metricsServers.push(await listenHttp(createMetricsHttpServer({
          metrics,
          health: () => {
            if (member.writesDisabledReason) return { healthy: false, reason: member.writesDisabledReason };
            if (member.leaderId() === 0n) return { healthy: false, reason: 'no leader' };
            return { healthy: true, reason: '' };
          },
        }), url));
      }
    } catch (error) {
      // What did start is stopped, so the process exits with the error: it stayed up, its peer
      // port open and reconnecting, when a client port was taken.
      await stopPartialStart({ member, cleanups, grpc, clientListeners, metricsServers });
      throw error;
    }
    member.start();
    const clientUrls = advertisedClientUrls(config, clientAddresses);
    // An advertised peer port 0 (tests) is published as the port the listener got.
    const peerUrls = config.initialAdvertisePeerUrls.some((url) => url.port === '0')
      ? transport.listenAddresses.map((address, i) => `${config.listenPeerUrls[i]?.protocol ?? 'http:'}//${address}`)
      : undefined;
    cleanups.push(publishAttributes(member, { id: memberId, name: config.name, clientUrls, peerUrls }, leaderListeners, logger));
    logger.info(`serving the etcd v3 API on ${clientAddresses.join(', ')}, peers on ${transport.listenAddresses.join(', ')} ` +
      `(member ${memberId.toString(16)}, cluster ${clusterId.toString(16)})`);
    started.server = new StoreServer({
      config, clusterId, memberId, member, transport, metrics, grpc, clientAddresses, clientListeners, metricsServers, fastPath, recovered, cleanups, logger,
    });
    if (removedWhileStarting) {
      removed = false;
      onRemoved('had been removed from the cluster');
    }
    return started.server;
  }

  /**
   * Stops the member. A leader first hands leadership to its most up-to-date voter (unless told
   * not to), so a planned restart costs the cluster no election timeout.
   */
  stop(options: { handOverLeadership?: boolean } = {}): Promise<void> {
    this.stopping ??= this.stopOnce(options.handOverLeadership ?? true);
    return this.stopping;
  }

  private async stopOnce(handOverLeadership: boolean): Promise<void> {
    if (handOverLeadership && this.member.membership().voters.length > 1) {
      const target = await this.member.handOverLeadership(this.config.electionTimeoutMs);
      if (target !== 0n) this.logger.info(`handed leadership to ${target.toString(16)} before stopping`);
    }
    for (const cleanup of this.cleanups) await cleanup();
    this.member.stop();
    await this.member.snapshotSettled();
    await new Promise<void>((resolve) => this.grpc.tryShutdown(() => resolve()));
    await Promise.all(this.clientListeners.map((listener) => listener.close()));
    await Promise.all(this.metricsServers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await closeDataDir(this.recovered);
  }
}

/** Stops what a start that failed half-way had started (the data dir is closed by the caller). */
async function stopPartialStart(started: {
  member: { stop(): void }; cleanups: (() => void | Promise<void>)[]; grpc: Server; clientListeners: ClientListener[]; metricsServers: { close(done: () => void): void }[];
}): Promise<void> {
  started.member.stop();
  for (const cleanup of started.cleanups) await Promise.resolve(cleanup()).catch(() => undefined);
  started.grpc.forceShutdown();
  await Promise.all(started.clientListeners.map((listener) => listener.close().catch(() => undefined)));
  await Promise.all(started.metricsServers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
}

/** Codes of errors about a snapshot's content, found when the member restores it at start-up. */
const SNAPSHOT_CONTENT_CODES = new Set(['CONCORD_E_SNAPSHOT_CORRUPT', 'CONCORD_E_KV_SNAPSHOT_INVALID', 'CONCORD_E_KV_SNAPSHOT_VERSION']);

/** The decoders do not know which file they read: the operator needs its name to act. */
function namingSnapshotFile(error: unknown, path: string | undefined): unknown {
  const code = (error as { code?: unknown }).code;
  if (path !== undefined && error instanceof Error && typeof code === 'string' && SNAPSHOT_CONTENT_CODES.has(code)) {
    error.message = `${error.message} (snapshot file ${path}; move it aside to start from the one before it)`;
  }
  return error;
}

/** The WAL behind the member's Ready loop, timing its fsyncs (and, as a deliberate defect, not waiting for them). */
function createDurableLog(recovered: RecoveredDataDir, metrics: ServerMetrics, ackBeforeFsync: boolean, logger: StoreServerLogger): DurableLog {
  const save = async (hardState: Parameters<DurableLog['save']>[0], entries: readonly Parameters<DurableLog['save']>[1][number][], mustSync: boolean) => {
    const { stats } = recovered.wal;
    const fsyncsBefore = stats.fsyncs;
    const onThreadBefore = stats.fsyncsOnThisThread;
    const started = performance.now();
    await recovered.wal.save(hardState, entries, { sync: mustSync });
    if (stats.fsyncs > fsyncsBefore) metrics.walFsyncSeconds.observe((performance.now() - started) / 1000);
    if (stats.fsyncsOnThisThread > onThreadBefore) metrics.walFsyncsOnThread.inc(stats.fsyncsOnThisThread - onThreadBefore);
  };
  let lagging = Promise.resolve();
  return {
    save: async (hardState, entries, mustSync) => {
      if (!ackBeforeFsync) return save(hardState, entries, mustSync);
      // The defect: report the write durable now, write it a second later, in order.
      lagging = lagging
        .then(() => new Promise((resolve) => setTimeout(resolve, ACK_BEFORE_FSYNC_DELAY_MS)))
        .then(() => save(hardState, entries, mustSync))
        .catch((error: unknown) => logger.error(`delayed WAL write failed: ${(error as Error).message}`));
    },
    saveSnapshot: async (snapshot) => {
      await lagging;
      await persistSnapshot({ wal: recovered.wal, snapshots: recovered.snapshots }, snapshot);
    },
    releaseBefore: async () => {}, // persistSnapshot releases the WAL behind the previous snapshot
  };
}

/** Peer URLs of everyone in the member list (or, for a member still joining, the members it was told of). */
function peerUrlsOf(members: readonly MemberInfo[], joined: readonly JoinAnswerMember[]): Map<bigint, string[]> {
  const peers = new Map<bigint, string[]>();
  for (const known of joined) peers.set(BigInt(known.id), known.peerUrls);
  for (const known of members) peers.set(known.id, known.peerUrls);
  return peers;
}

/** An advertised port 0 means "whatever port the listener got": advertise the bound address. */
function advertisedClientUrls(config: ServerConfig, clientAddresses: string[]): string[] {
  if (config.advertiseClientUrls.some((url) => url.port === '0')) {
    return clientAddresses.map((address, i) => `${config.listenClientUrls[i]?.protocol ?? 'http:'}//${address}`);
  }
  return config.advertiseClientUrls.map((url) => url.origin);
}

/**
 * Outgoing peer connections leave from the member's own peer listen address when it is a specific
 * IP: peers, firewalls and the chaos relay then see which member dials.
 */
function outgoingAddress(config: ServerConfig): string | undefined {
  const host = config.listenPeerUrls[0]?.hostname;
  if (!host || host === '0.0.0.0' || host === '::' || host === '[::]' || !/^[\d.]+$/.test(host)) return undefined;
  return host;
}

/**
 * Publishes this member's name and client URLs in the replicated member list once there is a
 * leader (etcd's publish), retrying until it is applied. Returns the function that stops it.
 */
function publishAttributes(
  member: RaftMember<ApplyResult>, attributes: { id: bigint; name: string; clientUrls: string[]; peerUrls?: string[] },
  leaderListeners: Set<(leader: bigint, term: number) => void>, logger: StoreServerLogger,
): () => void {
  let stopped = false;
  let publishing = false;
  const current = () => member.memberList().find((known) => known.id === attributes.id);
  const upToDate = () => {
    const known = current();
    return !known || (known.name === attributes.name && known.clientUrls.join() === attributes.clientUrls.join() &&
      (!attributes.peerUrls || known.peerUrls.join() === attributes.peerUrls.join()));
  };
  const attempt = async () => {
    if (stopped || publishing || upToDate() || member.leaderId() === 0n) return;
    publishing = true;
    try {
      await member.proposeMemberAttributes({
        id: attributes.id.toString(), name: attributes.name, clientUrls: attributes.clientUrls,
        ...(attributes.peerUrls ? { peerUrls: attributes.peerUrls } : {}),
      });
    } catch (error) {
      if (!stopped) logger.warn(`publishing this member's client URLs failed (${(error as Error).message}); retrying`);
    } finally {
      publishing = false;
    }
  };
  const onLeader = () => void attempt();
  leaderListeners.add(onLeader);
  const timer = setInterval(() => void attempt(), 1_000);
  void attempt();
  return () => {
    stopped = true;
    clearInterval(timer);
    leaderListeners.delete(onLeader);
  };
}

function insecure(): ServerCredentials {
  return loadTls({ clientTls: { clientCertAuth: false }, peerTls: { clientCertAuth: false } }).clientCredentials;
}

function listenHttp(server: HttpServer, url: URL): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new ConfigError(`cannot serve metrics on ${url.host}: ${error.message}`)));
    server.listen(Number(url.port), url.hostname, () => resolve(server));
  });
}

function consoleLogger(name: string): StoreServerLogger {
  const line = (level: string, message: string) => process.stderr.write(`${new Date().toISOString()} ${level} [${name}] ${message}\n`);
  return {
    info: (message) => line('info', message),
    warn: (message) => line('warn', message),
    error: (message) => line('error', message),
  };
}
