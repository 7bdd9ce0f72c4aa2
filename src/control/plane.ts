// The control plane: what every `concord server` member runs next to its store member (and what
// `concord control-plane --store URL` runs against any etcd, and `concord up` embeds). All of its
// state is in the store, so members are interchangeable and any number may run:
//
//   membership   registers /concord/control/members/<name> with a lease; follows the others'
//   health       checks the backends it owns (rendezvous hashing over the live members) and
//                publishes the results for every proxy (shared-health.ts)
//   autoscaler   the leader-elected controller for the pools with `autoscale:`, with load from the
//                registered proxies and readiness from the published results
//   timeline     health transitions, leader changes, configuration refusals; retention (count and
//                age) enforced by one member, the coordinator (rendezvous over the members too)
//   admin API    controlPlane.admin: the dashboard's API, /metrics of every hosted component, /events
//
// Its configuration is the applied one (/concord/config), followed live.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Counter, Gauge, Registry } from 'prom-client';
import { AutoscaleController } from '../autoscale/controller/controller.ts';
import { launchVersionOf, poolSetupOf } from '../autoscale/controller/controller-config.ts';
import { autoscaleReport, freeze, unfreeze } from '../autoscale/controller/kill-switch.ts';
import type { PoolSetup } from '../autoscale/controller/pool-period.ts';
import { AUTOSCALE_PREFIX } from '../autoscale/state/keys.ts';
import type { CoordStore, WatchHandle } from '../coord/coord-store.ts';
import type { StoreCluster, StoreMember } from '../coord/store-cluster.ts';
import { AdminAuthenticator, identityStoreOf, type IdentityStore } from './admin-auth.ts';
import { ApiProblem, AdminServer, type EventQuery, type StaticFilesHandler } from './admin-api.ts';
import type { Overview } from './admin-api-types.ts';
import { toPolicyConfig } from './autoscale-config.ts';
import { addressOf, ConfigError, type ConcordConfig } from './config.ts';
import { instancesByPool, proxyRegistrations } from './cluster-view.ts';
import { AppliedConfigWatcher } from './config-store.ts';
import { DEFAULT_CONTROL_PLANE_ADMIN, type ControlPlaneSettings } from './control-plane-config.ts';
import { DrainError, setDrain } from './drains.ts';
import { EventSink } from './event-sink.ts';
import { EVENTS_PREFIX, EventTimeline, eventKeyAt, readEvents, type TimelineEvent } from './events.ts';
import { parseHealthRecord, type HealthRecord } from './health-record.ts';
import { buildOverview, type Decision } from './overview.ts';
import { PlaneMetricsSource } from './plane-metrics-source.ts';
import { ProxyScraper, type ProxyRegistration } from './proxy-scraper.ts';
import { Registration } from './registration.ts';
import { ownerOf } from './sharding/rendezvous.ts';
import { SharedHealthChecker } from './shared-health.ts';
import { CONTROL_MEMBERS_PREFIX, HEALTH_PREFIX, healthKey, memberKey, nameOf, PROXIES_PREFIX } from './store-keys.ts';
import { StoreMirror } from './store-mirror.ts';
import { createStaticFilesHandler } from '../ui/static-files.ts';

export interface ControlPlaneLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface ControlPlaneOptions {
  store: CoordStore;
  /** The store's membership API, for the overview (EtcdCoordStore.cluster). */
  cluster?: StoreCluster;
  /** This member's name: in its registration, the events it writes, the autoscaler's leader record. */
  name: string;
  /** host:port for the admin API instead of controlPlane.admin (a flag); port 0 picks a free one. */
  admin?: string;
  /** Prometheus text of the other components hosted in this process (the store member, a proxy). */
  hostedMetrics?: (() => Promise<string>)[];
  /** The dashboard's static files; by default the page bundled with Concord (src/ui/static-files.ts). */
  staticFiles?: StaticFilesHandler;
  logger?: ControlPlaneLogger;
  /** How long start() waits for the applied configuration before going on with defaults. */
  configWaitMs?: number;
  /** Retention and coordinator duties run this often. */
  housekeepingIntervalMs?: number;
  /** Users of the store, for the admin API's identities; by default the store itself when it can (EtcdCoordStore). */
  identities?: IdentityStore;
  /** The admin API over HTTPS with these files instead of controlPlane.tls (flags). */
  adminTls?: { certFile: string; keyFile: string };
}

function readAdminPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(`controlPlane.tls.${what}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

const DEFAULT_CONFIG_WAIT_MS = 3_000;
const DEFAULT_HOUSEKEEPING_INTERVAL_MS = 30_000;
/** Decisions kept per pool for the overview. */
const DECISIONS_KEPT = 5;
/** Events read back at start to fill the decisions shown in the overview. */
const EVENTS_READ_AT_START = 500;
/** The coordinator's key in the rendezvous: one member prunes, cleans up and reports for all. */
const COORDINATOR_KEY = 'coordinator';
const DEFAULTS: ControlPlaneSettings = {
  admin: DEFAULT_CONTROL_PLANE_ADMIN,
  autoscale: { hardMaxInstances: 100, leaseTtlSeconds: 10 },
  membership: { leaseTtlSeconds: 5 },
  health: { refreshMs: 5_000, maxResultAgeMs: 15_000, maxConcurrentChecks: 64 },
  events: { maxEvents: 10_000, maxAgeMs: 7 * 24 * 3_600_000 },
};

const SILENT: ControlPlaneLogger = { info: () => {}, warn: () => {} };

/** The controller's view of the configuration's autoscaled pools. */
export function autoscaledPoolSetups(config: ConcordConfig): PoolSetup[] {
  return config.pools.filter((pool) => pool.autoscale !== undefined).map((pool) => poolSetupOf({
    name: pool.name, section: pool.autoscale!, config: toPolicyConfig(pool.name, pool.autoscale!, config.controlPlane), launchVersion: launchVersionOf(pool.autoscale!),
  }));
}

export class ControlPlane {
  readonly name: string;
  readonly health: SharedHealthChecker;
  readonly registry = new Registry();
  private readonly options: ControlPlaneOptions;
  private readonly store: CoordStore;
  private readonly logger: ControlPlaneLogger;
  private readonly configWatcher: AppliedConfigWatcher;
  private readonly memberMirror: StoreMirror;
  private readonly proxyMirror: StoreMirror;
  private readonly healthMirror: StoreMirror;
  private readonly instanceMirror: StoreMirror;
  private readonly events: EventSink;
  private readonly timeline: EventTimeline;
  private readonly scraper: ProxyScraper;
  private readonly records = new Map<string, { record: HealthRecord; receivedMs: number }>();
  private readonly decisions = new Map<string, Decision[]>();
  private readonly subscribers = new Set<(event: TimelineEvent) => void>();
  private registration: Registration | undefined;
  private controller: AutoscaleController | undefined;
  private admin: AdminServer | undefined;
  private adminAddress: string | undefined;
  private eventWatch: WatchHandle | undefined;
  private housekeeping: NodeJS.Timeout | undefined;
  private storeLeader: bigint | undefined;
  /** null: the bundled page's files are missing (logged once). */
  private bundledStaticFiles: StaticFilesHandler | null | undefined;
  private stopped = false;
  private readonly startedAtMs = Date.now();

  private constructor(options: ControlPlaneOptions) {
    this.options = options;
    this.name = options.name;
    this.store = options.store;
    this.logger = options.logger ?? SILENT;
    this.timeline = new EventTimeline(options.store, options.name);
    this.events = new EventSink(options.store, { writer: options.name, source: 'control-plane', onProblem: (message) => this.logger.warn(message) });
    this.health = new SharedHealthChecker({
      store: options.store, member: options.name,
      onEvent: (event, checker) => this.events.push({
        source: 'health', atMs: event.atMs, kind: event.kind, pool: event.pool,
        message: `${event.backend}: ${event.detail}${event.detectionMs === undefined ? '' : ` (detected in ${Math.round(event.detectionMs)} ms)`}`,
        data: { backend: event.backend, cause: event.cause, checker, ...(event.detectionMs === undefined ? {} : { detectionMs: event.detectionMs }) },
      }),
      onNotice: (message) => this.logger.info(message),
    });
    this.configWatcher = new AppliedConfigWatcher(options.store, {
      onConfig: (applied) => this.applyConfig(applied.config, applied.revision),
      onRejected: (problem) => {
        this.logger.warn(`configuration revision ${problem.revision} refused; the running configuration stays: ${problem.message}`);
        if (this.isCoordinator()) this.events.push({ atMs: Date.now(), kind: 'config-rejected', message: `configuration revision ${problem.revision} (${problem.digest}) does not validate; the running configuration stays: ${problem.message}`, data: { revision: problem.revision.toString(), digest: problem.digest } });
      },
      onProblem: (message) => this.logger.warn(message),
    });
    this.memberMirror = new StoreMirror(options.store, { key: CONTROL_MEMBERS_PREFIX, prefix: true, onChange: () => this.membersChanged(), onProblem: (message) => this.logger.warn(message) });
    this.proxyMirror = new StoreMirror(options.store, { key: PROXIES_PREFIX, prefix: true, onChange: () => {}, onProblem: (message) => this.logger.warn(message) });
    this.healthMirror = new StoreMirror(options.store, {
      key: HEALTH_PREFIX, prefix: true, onProblem: (message) => this.logger.warn(message),
      onChange: (change) => {
        for (const key of change.deleted) this.records.delete(key);
        for (const kv of change.updated) {
          const parsed = parseHealthRecord(kv.value);
          if (parsed.ok) this.records.set(kv.key, { record: parsed.record, receivedMs: change.reread ? performance.now() - Math.max(0, Date.now() - parsed.record.publishedAtMs) : performance.now() });
        }
        this.health.setPublished(new Map([...this.records.values()].map(({ record }) => [`${record.pool}/${record.backend}`, record])));
      },
    });
    this.instanceMirror = new StoreMirror(options.store, { key: AUTOSCALE_PREFIX, prefix: true, onChange: () => this.health.setInstances(this.instancesByPool()), onProblem: (message) => this.logger.warn(message) });
    this.scraper = new ProxyScraper(() => this.proxies());
    this.registerMetrics();
  }

  /** Starts every part; resolves once the admin API listens. */
  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const plane = new ControlPlane(options);
    try {
      await plane.begin();
    } catch (error) {
      await plane.stop();
      throw error;
    }
    return plane;
  }

  /** host:port the admin API listens on. */
  get adminUrl(): string {
    const address = this.admin!.address();
    return `${this.admin!.scheme}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  }

  get settings(): ControlPlaneSettings {
    return this.configWatcher.applied?.config.controlPlane ?? DEFAULTS;
  }

  /** The live members (registered), sorted. */
  members(): string[] {
    return this.memberMirror.values().map((kv) => nameOf(CONTROL_MEMBERS_PREFIX, kv.key)).filter((name): name is string => name !== undefined).sort();
  }

  /** The autoscale controller, once a configuration with an autoscaled pool was applied. */
  get autoscaler(): AutoscaleController | undefined {
    return this.controller;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.housekeeping);
    await this.admin?.close();
    await this.eventWatch?.cancel().catch(() => undefined);
    this.health.stop();
    await this.controller?.stop();
    await this.registration?.stop();
    await this.events.stop();
    await Promise.all([this.configWatcher.stop(), this.memberMirror.stop(), this.proxyMirror.stop(), this.healthMirror.stop(), this.instanceMirror.stop()]);
  }

  /** Stops like a crash, for tests: no deregistration (the lease runs out), no resignation. */
  async crash(): Promise<void> {
    this.stopped = true;
    clearInterval(this.housekeeping);
    this.registration?.abandon();
    await this.admin?.close();
    await this.eventWatch?.cancel().catch(() => undefined);
    this.health.stop();
    await this.controller?.crash();
    await Promise.all([this.configWatcher.stop(), this.memberMirror.stop(), this.proxyMirror.stop(), this.healthMirror.stop(), this.instanceMirror.stop()]);
  }

  // -------------------------------------------------------------------------------------------

  private async begin(): Promise<void> {
    this.configWatcher.start();
    for (const mirror of [this.memberMirror, this.proxyMirror, this.healthMirror, this.instanceMirror]) mirror.start();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.configWatcher.loaded(), new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.configWaitMs ?? DEFAULT_CONFIG_WAIT_MS);
    })]);
    clearTimeout(timer);
    if (this.configWatcher.applied === undefined) this.logger.info('no configuration is applied yet (concord config apply FILE): checking nothing until one is');
    await this.listenAdmin();
    this.registration = new Registration(this.store, {
      key: memberKey(this.name),
      ttlSeconds: this.settings.membership.leaseTtlSeconds,
      value: () => JSON.stringify({ name: this.name, admin: this.admin === undefined ? null : this.adminUrl, host: hostname(), pid: process.pid, startedAtMs: this.startedAtMs }),
      onChange: (_registered, detail) => {
        this.logger.info(`membership: ${detail}`);
        this.membersChanged();
      },
    });
    this.registration.start();
    this.health.start();
    await this.followEvents();
    this.events.start();
    this.housekeeping = setInterval(() => void this.houseKeep(), this.options.housekeepingIntervalMs ?? DEFAULT_HOUSEKEEPING_INTERVAL_MS);
    this.housekeeping.unref();
  }

  private applyConfig(config: ConcordConfig, revision: bigint): void {
    this.logger.info(`configuration revision ${revision} applied: pools ${config.pools.map((pool) => pool.name).join(', ') || 'none'}`);
    this.health.setConfig(config);
    const setups = autoscaledPoolSetups(config);
    if (this.controller === undefined && setups.length > 0) {
      this.controller = new AutoscaleController({
        store: this.store, name: this.name, pools: setups,
        metrics: new PlaneMetricsSource({ proxyUrls: () => this.proxies().map((proxy) => `${proxy.admin}/backends`), health: (pool, backend) => this.currentRecord(pool, backend), onProblem: (message) => this.logger.warn(message) }),
        leaseTtlSeconds: config.controlPlane.autoscale.leaseTtlSeconds,
        maxEvents: config.controlPlane.events.maxEvents,
        logger: { info: (text) => this.logger.info(text), warn: (text) => this.logger.warn(text), error: (text) => this.logger.warn(text) },
      });
      this.controller.start();
    } else if (this.controller !== undefined) {
      const { providerChangesPending } = this.controller.setPools(setups);
      for (const pool of providerChangesPending) this.logger.warn(`pool ${pool}: the autoscale provider section changed; it takes effect when this member next starts leading the autoscaler`);
    }
    if (this.admin !== undefined && this.options.admin === undefined && config.controlPlane.admin !== this.adminAddress) void this.listenAdmin();
  }

  private membersChanged(): void {
    const members = this.members();
    const registered = this.registration?.isRegistered === true && members.includes(this.name);
    this.health.setMembers(members, registered);
  }

  private isCoordinator(): boolean {
    return ownerOf(this.members(), COORDINATOR_KEY) === this.name && this.registration?.isRegistered === true;
  }

  /** The published result of pool/backend, if it is current (rewritten within maxResultAgeMs). */
  private currentRecord(pool: string, backend: string): HealthRecord | undefined {
    const entry = this.records.get(healthKey(pool, backend));
    if (entry === undefined || performance.now() - entry.receivedMs > this.settings.health.maxResultAgeMs) return undefined;
    return entry.record;
  }

  private proxies(): ProxyRegistration[] {
    return proxyRegistrations(this.proxyMirror.values());
  }

  private instancesByPool(): Map<string, string[]> {
    return instancesByPool(this.instanceMirror.values());
  }

  // ---- admin API -------------------------------------------------------------------------------

  /** The dashboard's files: the given handler, else the page bundled with Concord (if its files are there). */
  private get staticFiles(): StaticFilesHandler | undefined {
    if (this.options.staticFiles !== undefined) return this.options.staticFiles;
    if (this.bundledStaticFiles === undefined) {
      try {
        this.bundledStaticFiles = createStaticFilesHandler();
      } catch (error) {
        this.logger.warn(`the dashboard is not served: ${(error as Error).message}`);
        this.bundledStaticFiles = null;
      }
    }
    return this.bundledStaticFiles ?? undefined;
  }

  private async listenAdmin(): Promise<void> {
    const address = this.options.admin ?? this.settings.admin;
    const previous = this.admin;
    const { host, port } = addressOf(address);
    const identities = this.options.identities ?? identityStoreOf(this.store);
    const tlsFiles = this.options.adminTls ?? this.settings.tls;
    const server = new AdminServer({
      ...(this.staticFiles === undefined ? {} : { staticFiles: this.staticFiles }),
      ...(identities === undefined ? {} : { auth: new AdminAuthenticator(identities) }),
      ...(tlsFiles === undefined ? {} : { tls: { cert: readAdminPem(tlsFiles.certFile, 'certFile'), key: readAdminPem(tlsFiles.keyFile, 'keyFile') } }),
      backend: {
        overview: () => this.overview(),
        events: (query) => this.readTimeline(query),
        subscribe: (listener) => {
          this.subscribers.add(listener);
          return () => this.subscribers.delete(listener);
        },
        freeze: async (request) => {
          await freeze(request.store ?? this.store, { ...(request.pool === undefined ? {} : { pool: request.pool }), by: request.by, reason: request.reason, atMs: Date.now() });
        },
        unfreeze: async (request) => {
          await unfreeze(request.store ?? this.store, { ...(request.pool === undefined ? {} : { pool: request.pool }), by: request.by, atMs: Date.now() });
        },
        drain: (request) => this.setDrain(request.store ?? this.store, request.pool, request.backend, request.by, true, request.reason),
        undrain: (request) => this.setDrain(request.store ?? this.store, request.pool, request.backend, request.by, false),
        metricsText: () => this.metricsText(),
      },
    });
    try {
      await server.listen(host, port);
    } catch (error) {
      if (previous !== undefined) {
        this.logger.warn(`cannot move the admin API to ${address}: ${(error as Error).message}; it stays at ${this.adminAddress}`);
        return;
      }
      throw error;
    }
    this.admin = server;
    this.adminAddress = address;
    await previous?.close();
    void this.registration?.refresh();
    this.logger.info(`admin API and metrics at ${this.adminUrl}`);
  }

  async overview(): Promise<Overview> {
    const [members, leaderId, scrapes, autoscale] = await Promise.all([
      this.options.cluster?.members().catch((): StoreMember[] => []) ?? Promise.resolve([]),
      this.options.cluster?.leaderId().catch(() => undefined) ?? Promise.resolve(undefined),
      this.scraper.scrape(),
      autoscaleReport(this.store).catch(() => undefined),
    ]);
    const health = new Map<string, HealthRecord>();
    for (const { record } of this.records.values()) health.set(`${record.pool}/${record.backend}`, record);
    return buildOverview({ nowMs: Date.now(), config: this.configWatcher.applied?.config, members, leaderId, scrapes, health, instances: this.instancesByPool(), autoscale, decisions: this.decisions });
  }

  private async readTimeline(query: EventQuery): Promise<TimelineEvent[]> {
    const events = await readEvents(this.store, {
      ...(query.sinceMs === undefined ? {} : { sinceMs: query.sinceMs }), ...(query.untilMs === undefined ? {} : { untilMs: query.untilMs }),
      // With a pool filter, read more and filter: events of all pools share one key range.
      limit: query.pool === undefined && query.sinceMs !== undefined ? query.limit : 0,
    });
    const matching = query.pool === undefined ? events : events.filter((event) => event.pool === query.pool);
    return matching.slice(-query.limit);
  }

  private async setDrain(store: CoordStore, pool: string, backend: string, by: string, draining: boolean, reason?: string): Promise<void> {
    try {
      await setDrain(store, this.configWatcher.applied?.config, { pool, backend, by, draining, atMs: Date.now(), ...(reason === undefined ? {} : { reason }) }, this.name);
    } catch (error) {
      if (error instanceof DrainError) throw new ApiProblem(404, error.code, error.message);
      throw error;
    }
  }

  // ---- timeline --------------------------------------------------------------------------------

  /** Follows new events (for the live stream and the decisions in the overview); fills the decisions from the recent past. */
  private async followEvents(): Promise<void> {
    const recent = await this.store.range(EVENTS_PREFIX, { prefix: true, sort: { target: 'key', order: 'descend' }, limit: EVENTS_READ_AT_START }).catch(() => undefined);
    for (const kv of [...(recent?.kvs ?? [])].reverse()) this.noteEvent(kv.value, false);
    const watchFrom = recent === undefined ? undefined : recent.revision + 1n;
    try {
      this.eventWatch = await this.store.watch(EVENTS_PREFIX, { prefix: true, ...(watchFrom === undefined ? {} : { fromRevision: watchFrom }) }, {
        onEvents: (events) => {
          for (const event of events) if (event.type === 'put') this.noteEvent(event.kv.value, true);
        },
        onError: (error) => {
          this.logger.warn(`the event stream ended (${error.message}); following again from now`);
          this.eventWatch = undefined;
          if (!this.stopped) void this.followEvents();
        },
      });
    } catch (error) {
      this.logger.warn(`cannot follow the event timeline yet: ${(error as Error).message}`);
    }
  }

  private noteEvent(value: string, live: boolean): void {
    let event: TimelineEvent;
    try {
      event = JSON.parse(value) as TimelineEvent;
    } catch {
      return;
    }
    if (typeof event.atMs !== 'number' || typeof event.kind !== 'string' || typeof event.message !== 'string') return;
    if (event.kind === 'decision' && event.pool !== undefined) {
      const desired = /^desired (\d+)/.exec(event.message);
      const steps = (event.data as { steps?: { stage: string; from: number; to: number; reason: string }[] } | undefined)?.steps ?? [];
      const list = this.decisions.get(event.pool) ?? [];
      list.push({ atMs: event.atMs, desired: desired === null ? Number.NaN : Number(desired[1]), reasons: steps.map((step) => `${step.stage}: ${step.from} -> ${step.to}: ${step.reason}`) });
      if (list.length > DECISIONS_KEPT) list.shift();
      this.decisions.set(event.pool, list);
    }
    if (live) for (const subscriber of this.subscribers) subscriber(event);
  }

  /** The coordinator's duties: retention of the timeline, results of backends no longer configured, store leader changes. */
  private async houseKeep(): Promise<void> {
    if (!this.isCoordinator()) return;
    const settings = this.settings;
    try {
      const pruner = new EventTimeline(this.store, this.name, { maxEvents: settings.events.maxEvents });
      await pruner.prune();
      await this.store.delete(EVENTS_PREFIX, { rangeEnd: eventKeyAt(Date.now() - settings.events.maxAgeMs) });
      if (this.configWatcher.applied !== undefined) {
        const wanted = this.health.wantedBackends();
        for (const { record } of [...this.records.values()]) {
          const key = `${record.pool}/${record.backend}`;
          if (!wanted.has(key)) await this.store.delete(healthKey(record.pool, record.backend));
        }
      }
      const leader = await this.options.cluster?.leaderId().catch(() => undefined);
      if (leader !== undefined && this.storeLeader !== undefined && leader !== this.storeLeader) {
        this.events.push({ atMs: Date.now(), kind: 'store-leader-changed', message: `the store's leader is now member ${leader.toString(16)} (was ${this.storeLeader.toString(16)})`, data: { leader: leader.toString(16), previous: this.storeLeader.toString(16) } });
      }
      if (leader !== undefined) this.storeLeader = leader;
    } catch (error) {
      this.logger.warn(`housekeeping failed (retried next time): ${(error as Error).message}`);
    }
  }

  // ---- metrics ---------------------------------------------------------------------------------

  private registerMetrics(): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, registers, collect() { this.set(read()); } });
    /** A counter whose total is kept elsewhere: it catches up at each scrape. */
    const counter = (name: string, help: string, read: () => number) => {
      let seen = 0;
      return new Counter({ name, help, registers, collect() { const total = read(); if (total > seen) this.inc(total - seen); seen = total; } });
    };
    gauge('concord_control_members', 'control-plane members registered in the store', () => this.members().length);
    gauge('concord_control_is_registered', '1 while this member is registered (and so checks its share of the backends)', () => (this.registration?.isRegistered === true ? 1 : 0));
    gauge('concord_control_health_backends_owned', 'backends this member checks for the whole cluster', () => this.health.ownedBackends().length);
    counter('concord_control_health_probes_passed_total', 'probes this member ran that passed', () => this.health.probeCounts.pass);
    counter('concord_control_health_probes_failed_total', 'probes this member ran that failed', () => this.health.probeCounts.fail);
    counter('concord_control_health_publish_failures_total', 'health results this member could not write to the store', () => this.health.publishFailures);
    gauge('concord_control_proxies', 'proxies registered in the store', () => this.proxies().length);
    gauge('concord_control_config_revision', 'store revision of the configuration in force (0: none)', () => Number(this.configWatcher.applied?.revision ?? 0n));
    gauge('concord_control_autoscale_is_leader', '1 while this member leads the autoscaler', () => (this.controller?.role() === 'leader' ? 1 : 0));
  }

  private async metricsText(): Promise<string> {
    const texts = await Promise.all([this.registry.metrics(), ...(this.options.hostedMetrics ?? []).map((read) => read().catch(() => ''))]);
    return texts.filter((text) => text !== '').join('\n');
  }
}

export { DEFAULTS as DEFAULT_CONTROL_PLANE_SETTINGS };
