// `concord server`: one member of the coordination store. It recovers its data dir, runs Raft over
// the WAL, applies etcd commands to the MVCC state machine, and serves the etcd v3 gRPC API plus
// /metrics and /health. This stage runs a single-member cluster; the peer transport comes with
// the cluster work, and every piece here is already keyed by member and cluster ID for it.

import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import { SeededRandom } from '../random/seeded-random.ts';
import type { ApplyResult } from '../kv/state-machine.ts';
import { registerEtcdServices } from '../api/etcd/services.ts';
import type { EtcdServiceContext } from '../api/etcd/service-context.ts';
import type { HeaderSource } from '../api/etcd/wire.ts';
import { ServerMetrics } from '../observe/server-metrics.ts';
import { NodeFileSystem } from '../storage/file-system.ts';
import type { FileSystem } from '../storage/file-system.ts';
import { closeDataDir, persistSnapshot, recover, toMemoryStorage } from '../storage/data-dir.ts';
import type { RecoveredDataDir } from '../storage/data-dir.ts';
import { initialClusterIds } from './member-ids.ts';
import { createMetricsHttpServer } from './metrics-http.ts';
import { RaftMember } from './raft-member.ts';
import type { DurableLog, MemberTimers } from './raft-member.ts';
import type { ServerConfig } from './server-config.ts';
import { ConfigError } from './server-config.ts';
import { KvReplicatedStateMachine, StoreBackend } from './store-member.ts';
import { startAutoCompaction } from './auto-compaction-loop.ts';
import { parseAutoCompaction } from '../kv/auto-compaction.ts';
import { minLeaseTtlSeconds } from '../kv/lease.ts';

/** Proposals waiting at once before new ones are refused with "too many requests". */
const MAX_PENDING_PROPOSALS = 10_000;
/** Requests remembered per member so a re-proposal after a leader change applies once (also used by snapshot restore). */
export const APPLIED_REQUESTS_WINDOW = 10_000;
/** Entries kept behind a snapshot, as etcd's SnapshotCatchUpEntries. */
const KEPT_ENTRIES_AFTER_SNAPSHOT = 5_000;
/** gRPC framing on top of the request itself, as etcd allows (grpcOverheadBytes). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

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
}

const realTimers: MemberTimers = {
  nowMs: () => Date.now(),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class StoreServer {
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly member: RaftMember<ApplyResult>;
  readonly metrics: ServerMetrics;
  /** The addresses actually bound (port 0 in the config resolves to a real port). */
  readonly clientAddresses: string[];
  /** host:port of each /metrics and /health listener actually bound. */
  readonly metricsAddresses: string[];
  private readonly grpc: Server;
  private readonly metricsServers: HttpServer[];
  private readonly recovered: RecoveredDataDir;
  private readonly cleanups: (() => void | Promise<void>)[];

  private constructor(parts: {
    clusterId: bigint; memberId: bigint; member: RaftMember<ApplyResult>; metrics: ServerMetrics;
    grpc: Server; clientAddresses: string[]; metricsServers: HttpServer[]; recovered: RecoveredDataDir;
    cleanups: (() => void | Promise<void>)[];
  }) {
    this.cleanups = parts.cleanups;
    this.clusterId = parts.clusterId;
    this.memberId = parts.memberId;
    this.member = parts.member;
    this.metrics = parts.metrics;
    this.grpc = parts.grpc;
    this.clientAddresses = parts.clientAddresses;
    this.metricsServers = parts.metricsServers;
    this.metricsAddresses = parts.metricsServers.map((server) => {
      const address = server.address();
      return typeof address === 'object' && address ? `${address.address}:${address.port}` : String(address);
    });
    this.recovered = parts.recovered;
  }

  static async start(config: ServerConfig, options: StoreServerOptions = {}): Promise<StoreServer> {
    const logger = options.logger ?? consoleLogger(config.name);
    if (config.initialCluster.size > 1) {
      throw new ConfigError(
        `--initial-cluster names ${config.initialCluster.size} members, but this Concord build runs single-member clusters only; ` +
        'give just this member (clustering arrives with the peer transport)');
    }
    // Validate the auto-compaction flags before touching the data dir.
    parseAutoCompaction(config.autoCompactionMode, config.autoCompactionRetention);
    const ids = initialClusterIds(config.initialCluster, config.initialClusterToken);
    const memberId = ids.members.get(config.name)!;
    const fs = options.fs ?? new NodeFileSystem();
    const recovered = await recover(fs, config.dataDir, { clusterId: ids.clusterId, memberId }, {
      wal: { onWarning: (message) => logger.warn(message) },
    });
    for (const warning of recovered.warnings) logger.warn(warning);
    try {
      return await StoreServer.startRecovered(config, recovered, ids.clusterId, memberId, [...ids.members.values()], logger, options.serviceOptions);
    } catch (error) {
      await closeDataDir(recovered);
      throw error;
    }
  }

  private static async startRecovered(
    config: ServerConfig, recovered: RecoveredDataDir, clusterId: bigint, memberId: bigint, voters: bigint[], logger: StoreServerLogger,
    serviceOptions?: EtcdServiceContext['serviceOptions'],
  ): Promise<StoreServer> {
    const metrics = new ServerMetrics();
    const storage = toMemoryStorage(recovered, { voters, learners: [] });
    const electionTicks = Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    const machine = new KvReplicatedStateMachine({
      quotaBackendBytes: config.quotaBackendBytes,
      maxTxnOps: config.maxTxnOps,
      // etcd's minimum lease TTL: a lease must outlive a leader election (1.5 election timeouts).
      minLeaseTtlSeconds: minLeaseTtlSeconds(electionTicks, config.heartbeatIntervalMs),
    });
    const durableLog: DurableLog = {
      save: async (hardState, entries) => {
        const fsyncsBefore = recovered.wal.stats.fsyncs;
        const started = performance.now();
        await recovered.wal.save(hardState, entries);
        if (recovered.wal.stats.fsyncs > fsyncsBefore) metrics.walFsyncSeconds.observe((performance.now() - started) / 1000);
      },
      saveSnapshot: (snapshot) => persistSnapshot({ wal: recovered.wal, snapshots: recovered.snapshots }, snapshot),
      releaseBefore: async () => {}, // persistSnapshot releases the WAL behind the previous snapshot
    };
    const tickIntervalMs = config.heartbeatIntervalMs;
    const leaderListeners = new Set<(leader: bigint, term: number) => void>();
    const member = new RaftMember<ApplyResult>({
      id: memberId,
      storage,
      durableLog,
      stateMachine: machine,
      transport: { send: () => {} }, // a single member has no peers to talk to
      timers: realTimers,
      random: new SeededRandom(Number(memberId % BigInt(Number.MAX_SAFE_INTEGER)) ^ Date.now()),
      tickIntervalMs,
      electionTicks,
      heartbeatTicks: 1,
      snapshotEveryEntries: config.snapshotCount,
      keptEntriesAfterSnapshot: KEPT_ENTRIES_AFTER_SNAPSHOT,
      proposalTimeoutMs: Math.max(5_000, 5 * config.electionTimeoutMs),
      maxPendingProposals: MAX_PENDING_PROPOSALS,
      appliedRequestsWindow: APPLIED_REQUESTS_WINDOW,
      onLeaderChange: (leader, term) => {
        metrics.hasLeader.set(leader === 0n ? 0 : 1);
        metrics.isLeader.set(leader === memberId ? 1 : 0);
        metrics.term.set(term);
        metrics.leaderChanges.inc();
        logger.info(`leader is now ${leader === 0n ? 'unknown' : leader.toString(16)} in term ${term}`);
        for (const listener of leaderListeners) listener(leader, term);
      },
      onFatal: (error) => logger.error(`stopping: ${error.message}`),
    });
    const headers: HeaderSource = { clusterId, memberId, raftTerm: () => member.term() };
    const grpc = new Server({
      'grpc.max_receive_message_length': config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
      'grpc.max_send_message_length': 2 ** 31 - 1,
    });
    const cleanups: (() => void | Promise<void>)[] = [];
    const context: EtcdServiceContext = {
      backend: new StoreBackend(member, machine, config.maxRequestBytes, metrics),
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
      serviceOptions,
      metrics,
      clock: {
        nowMs: () => Date.now(),
        setInterval: (callback, ms) => setInterval(callback, ms),
        clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
      },
      memberUrls: () => new Map([[memberId, {
        name: config.name,
        peerUrls: config.initialAdvertisePeerUrls.map((url) => url.origin),
        // An advertised port 0 means "whatever port the listener got": advertise the bound address.
        clientUrls: config.advertiseClientUrls.some((url) => url.port === '0')
          ? clientAddresses.map((address) => `http://${address}`)
          : config.advertiseClientUrls.map((url) => url.origin),
        isLearner: false,
      }]]),
      onStop: (cleanup) => cleanups.push(cleanup),
    };
    registerEtcdServices(grpc, context);
    const autoCompaction = parseAutoCompaction(config.autoCompactionMode, config.autoCompactionRetention);
    if (autoCompaction) startAutoCompaction(autoCompaction, context, logger);
    metrics.sampleAtScrape({
      pendingProposals: () => member.pendingProposalCount(),
      applyLagEntries: () => member.committedIndex() - member.appliedIndex(),
      dbSizeBytes: () => machine.kv.sizeBytes(),
    });
    const clientAddresses: string[] = [];
    for (const url of config.listenClientUrls) {
      const port = await bindAsync(grpc, `${url.hostname}:${url.port}`);
      clientAddresses.push(`${url.hostname}:${port}`);
    }
    const metricsServers = await Promise.all(config.listenMetricsUrls.map((url) => listenHttp(
      createMetricsHttpServer({
        metrics,
        health: () => {
          if (member.writesDisabledReason) return { healthy: false, reason: member.writesDisabledReason };
          if (member.leaderId() === 0n) return { healthy: false, reason: 'no leader' };
          return { healthy: true, reason: '' };
        },
      }), url)));
    member.start();
    logger.info(`serving the etcd v3 API on ${clientAddresses.join(', ')} (member ${memberId.toString(16)}, cluster ${clusterId.toString(16)})`);
    return new StoreServer({ clusterId, memberId, member, metrics, grpc, clientAddresses, metricsServers, recovered, cleanups });
  }

  async stop(): Promise<void> {
    for (const cleanup of this.cleanups) await cleanup();
    this.member.stop();
    await new Promise<void>((resolve) => this.grpc.tryShutdown(() => resolve()));
    await Promise.all(this.metricsServers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await closeDataDir(this.recovered);
  }
}

function bindAsync(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
      if (error) reject(new ConfigError(`cannot listen for clients on ${address}: ${error.message}`));
      else resolve(port);
    });
  });
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
