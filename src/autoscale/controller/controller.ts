// The autoscale controller: runs on every control-plane member; exactly one leads, chosen by an
// election in the coordination store (`/concord/autoscale/leader/`), and only the leader decides
// and acts. Its fencing token is the create revision of its election key.
//
//   candidate: grant a lease (TTL leaseTtlSeconds, kept alive every third of it), campaign, wait.
//   leader:    fence every pool's provider with the token (older tokens are refused from then on),
//              then run each pool's control period: read, reconcile, decide, commit, act
//              (pool-period.ts, action-executor.ts); every store write is fenced (fence.ts).
//   leadership ends when the lease is lost (its deadline passed: the store may have let it go),
//   a fenced write fails, the provider refuses the token, or stop() is called; the controller then
//   becomes a candidate again with a new lease.
//
// Losing leadership does not rely on noticing it: the fence refuses every write of a deposed
// leader and the provider every action, whether the leader noticed or not.

import { hostname } from 'node:os';
import type { CoordStore, LeaseHandle } from '../../coord/coord-store.ts';
import { Election, type QueueTurn } from '../../coord/recipes.ts';
import { EventTimeline, type TimelineEvent } from '../../control/events.ts';
import type { Action, Decision } from '../policy/types.ts';
import type { Provider, ProviderEvent } from '../providers/provider.ts';
import { LEADER_ELECTION_PREFIX } from '../state/keys.ts';
import { parseLeaderRecord, type LeaderRecord } from '../state/records.ts';
import { executeActions, type ActionHooks } from './action-executor.ts';
import { Fence, isDeposed } from './fence.ts';
import type { MetricsSource } from './metrics-source.ts';
import { commitMemory, decidePeriod, type PeriodContext, type PoolSetup } from './pool-period.ts';

export interface ControllerLogger {
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
}

export interface ControllerOptions {
  store: CoordStore;
  /** This controller's name: in the leader record, the events it writes, and the action records. */
  name: string;
  pools: PoolSetup[];
  metrics: MetricsSource;
  /** The election lease's TTL: a dead leader is replaced within about this long. */
  leaseTtlSeconds?: number;
  /** The wall clock decisions and records use. */
  clock?: () => number;
  /** Events kept in the store's timeline (the leader prunes older ones). */
  maxEvents?: number;
  /** Wait after a failure (the store unreachable) before campaigning again. */
  retryDelayMs?: number;
  logger?: ControllerLogger;
  hooks?: ActionHooks;
  /** Every decision, after it is committed (for logs and tests). */
  onDecision?: (decision: Decision) => void;
}

export const DEFAULT_LEASE_TTL_SECONDS = 10;
export const DEFAULT_RETRY_DELAY_MS = 1_000;
/** The leader prunes the timeline once per this many periods of its first pool. */
const PRUNE_EVERY_PERIODS = 20;
/** How often a candidate looks at who leads (to stop instances another leader cannot manage). */
const LEADER_CHECK_INTERVAL_MS = 1_000;

export type ControllerRole = 'starting' | 'candidate' | 'leader' | 'stopped';

const SILENT: ControllerLogger = { info: () => {}, warn: () => {}, error: () => {} };

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export class AutoscaleController {
  readonly name: string;
  private readonly options: ControllerOptions;
  private readonly store: CoordStore;
  private readonly election: Election;
  private readonly timeline: EventTimeline;
  private readonly clock: () => number;
  private readonly logger: ControllerLogger;
  private readonly providers = new Map<string, Provider>();
  /** Per pool with a provider: whether its instances die with this controller (kept for pools since removed). */
  private readonly providersDieWithController = new Map<string, boolean>();
  private readonly stopping = new AbortController();
  private currentRole: ControllerRole = 'starting';
  private turn: QueueTurn | undefined;
  /** The lease of the current campaign or leadership. */
  private lease: LeaseHandle | undefined;
  private crashed = false;
  private running: Promise<void> | undefined;
  /** The pools controlled, by name; setPools() changes them while running. */
  private pools = new Map<string, PoolSetup>();
  /** Wakes the leader when the pools change (it starts loops for new pools; removed ones end by themselves). */
  private poolsChanged: (() => void) | undefined;

  constructor(options: ControllerOptions) {
    this.options = options;
    this.name = options.name;
    this.store = options.store;
    this.election = new Election(options.store, LEADER_ELECTION_PREFIX);
    this.timeline = new EventTimeline(options.store, options.name, { maxEvents: options.maxEvents });
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? SILENT;
    this.setPools(options.pools);
  }

  /**
   * Changes the pools controlled, live (a new configuration): a new pool's loop starts at once on
   * the leader, a removed pool's loop ends after its current period, and a changed pool's next
   * period uses the new policy. A pool's provider stays the one it was created with (its instances
   * belong to it): a changed provider section takes effect when this controller next starts
   * leading, and until then the pool keeps its launch version, so no refresh is started for a
   * command that is not in use yet.
   */
  setPools(pools: readonly PoolSetup[]): { providerChangesPending: string[] } {
    const next = new Map<string, PoolSetup>();
    const pending: string[] = [];
    for (const pool of pools) {
      if (next.has(pool.name)) throw new RangeError(`pool ${pool.name} is given twice`);
      const previous = this.pools.get(pool.name);
      if (previous !== undefined && this.providers.has(pool.name) && previous.launchVersion !== pool.launchVersion) {
        pending.push(pool.name);
        next.set(pool.name, { ...pool, launchVersion: previous.launchVersion, createProvider: previous.createProvider, instancesDieWithController: previous.instancesDieWithController, listGraceMs: previous.listGraceMs });
      } else {
        next.set(pool.name, pool);
      }
    }
    this.pools = next;
    this.poolsChanged?.();
    return { providerChangesPending: pending };
  }

  start(): void {
    this.running ??= this.run();
  }

  role(): ControllerRole {
    return this.currentRole;
  }

  /** The fencing token while leading. */
  fencingToken(): bigint | undefined {
    return this.currentRole === 'leader' ? this.turn?.token : undefined;
  }

  /** The provider this controller uses for a pool (created when it first leads). */
  provider(pool: string): Provider | undefined {
    return this.providers.get(pool);
  }

  /** Stops: resigns if leading (another controller takes over at once), stops the instances that die with it. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
    await this.closeProviders((setup) => setup.instancesDieWithController);
    this.currentRole = 'stopped';
  }

  /**
   * Stops like a crash: no resign, no revoke, nothing written; the lease runs out by itself and the
   * provider's instances stay (as a cloud's do when a controller machine dies). For tests.
   */
  async crash(): Promise<void> {
    this.crashed = true;
    this.lease?.release();
    this.stopping.abort();
    await this.running;
    this.currentRole = 'stopped';
  }

  // -------------------------------------------------------------------------------------------

  private async run(): Promise<void> {
    const ttl = this.options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    while (!this.stopping.signal.aborted) {
      let lease: LeaseHandle | undefined;
      try {
        this.currentRole = 'candidate';
        lease = await this.store.grantLease(ttl);
        this.lease = lease;
        if (this.crashed) return lease.release();
        this.turn = await this.campaign(lease);
        await this.lead(this.turn);
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        this.logger.warn(`${this.name}: ${(error as Error).message}; campaigning again in ${this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS} ms`);
        await sleep(this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS, this.stopping.signal);
      } finally {
        this.currentRole = this.stopping.signal.aborted ? 'stopped' : 'candidate';
        if (lease !== undefined && !this.crashed) await lease.revoke().catch(() => undefined);
      }
    }
  }

  private leaderRecord(): string {
    const record: LeaderRecord = { name: this.name, host: hostname(), pid: process.pid, sinceMs: this.clock() };
    return JSON.stringify(record);
  }

  /** Waits to lead; meanwhile stops the instances that die with this controller once another one leads. */
  private async campaign(lease: LeaseHandle): Promise<QueueTurn> {
    const campaigning = new AbortController();
    const onStop = () => campaigning.abort();
    this.stopping.signal.addEventListener('abort', onStop);
    const ownKey = `${LEADER_ELECTION_PREFIX}${lease.id.toString(16)}`;
    const watchOthers = (async () => {
      while (!campaigning.signal.aborted) {
        const leader = await this.election.leader().catch(() => undefined);
        if (leader !== undefined && leader.key !== ownKey) {
          const who = parseLeaderRecord(leader.value);
          await this.closeProviders((setup) => setup.instancesDieWithController, `${who.ok ? who.value.name : leader.key} leads now`);
        }
        await sleep(LEADER_CHECK_INTERVAL_MS, campaigning.signal);
      }
    })();
    try {
      return await this.election.campaign(lease, this.leaderRecord(), campaigning.signal);
    } finally {
      campaigning.abort();
      this.stopping.signal.removeEventListener('abort', onStop);
      await watchOthers;
    }
  }

  private async lead(turn: QueueTurn): Promise<void> {
    const fence = new Fence(this.store, turn);
    const leading = new AbortController();
    /** Why leadership ended; undefined while it has not, or when stop() ended it. */
    let lostBecause: string | undefined;
    const end = (reason: string | undefined) => {
      lostBecause ??= reason;
      leading.abort();
    };
    turn.lease.onLost((error) => end(error.message));
    const onStop = () => end(undefined);
    this.stopping.signal.addEventListener('abort', onStop);
    this.currentRole = 'leader';
    this.logger.info(`${this.name}: leads the autoscaler (fencing token ${turn.token})`);
    await this.record('leader-elected', `${this.name} leads the autoscaler (fencing token ${turn.token})`);
    try {
      // The leader record says since when it leads (it was written when the campaign began).
      await fence.commit([{ kind: 'put', key: turn.key, value: this.leaderRecord(), lease: turn.lease.id }]);
      const loops = new Map<string, Promise<void>>();
      const startLoops = async () => {
        for (const setup of [...this.pools.values()]) {
          if (loops.has(setup.name) || leading.signal.aborted) continue;
          await this.providerFor(setup).fence(turn.token);
          const loop = this.poolLoop(setup.name, fence, leading.signal).catch((error: unknown) => end((error as Error).message)).finally(() => loops.delete(setup.name));
          loops.set(setup.name, loop);
        }
      };
      await startLoops();
      let prunes = 0;
      while (!leading.signal.aborted) {
        const changed = new Promise<void>((resolve) => {
          this.poolsChanged = resolve;
        });
        // The timeline is pruned by the leader every PRUNE_EVERY_PERIODS of the shortest period.
        const periodMs = Math.min(...[...this.pools.values()].map((setup) => setup.config.periodMs), 60_000);
        await Promise.race([changed, sleep(periodMs, leading.signal)]);
        this.poolsChanged = undefined;
        if (leading.signal.aborted) break;
        await startLoops().catch((error: unknown) => end((error as Error).message));
        if (++prunes % PRUNE_EVERY_PERIODS === 0) await this.timeline.prune().catch(() => 0);
      }
      await Promise.all(loops.values());
    } catch (error) {
      end((error as Error).message);
    } finally {
      this.stopping.signal.removeEventListener('abort', onStop);
    }
    if (this.crashed) return;
    if (lostBecause === undefined) {
      await this.election.resign(turn).catch(() => false);
      this.logger.info(`${this.name}: resigned`);
      await this.record('leader-resigned', `${this.name} stopped and resigned (fencing token ${turn.token})`);
    } else {
      this.logger.warn(`${this.name}: no longer leads: ${lostBecause}`);
      await this.record('leader-deposed', `${this.name} no longer leads (fencing token ${turn.token}): ${lostBecause}`);
    }
  }

  /** Runs a pool's periods until leadership ends or the pool is removed; throws when this controller turns out to be deposed. */
  private async poolLoop(name: string, fence: Fence, leading: AbortSignal): Promise<void> {
    while (!leading.aborted) {
      const setup = this.pools.get(name);
      if (setup === undefined) {
        await this.closeProviders((candidate) => candidate.name === name && candidate.instancesDieWithController, `pool ${name} was removed from the configuration`);
        return;
      }
      const startedAt = performance.now();
      try {
        await this.runPeriod(setup, fence);
      } catch (error) {
        if (isDeposed(error) || this.crashed) throw error;
        this.logger.warn(`${this.name}: pool ${setup.name}: period failed: ${(error as Error).message}`);
        await this.record('period-failed', `pool ${setup.name}: the period failed and is retried next period: ${(error as Error).message}`, setup.name);
      }
      await sleep(Math.max(0, setup.config.periodMs - (performance.now() - startedAt)), leading);
    }
  }

  private async runPeriod(setup: PoolSetup, fence: Fence): Promise<void> {
    const context: PeriodContext = {
      store: this.store,
      fence,
      timeline: this.timeline,
      setup,
      provider: this.providerFor(setup),
      metrics: this.options.metrics,
      nowMs: this.clock(),
      clock: this.clock,
      leaderName: this.name,
    };
    const period = await decidePeriod(context);
    this.options.onDecision?.(period.decision);
    const done = new Set<Action>();
    try {
      await executeActions(context, period.decision, period.instances, this.options.hooks, (action) => done.add(action));
    } finally {
      // Whatever stopped the actions, the memory says what was done (a deposed leader's write fails, as it should).
      const missed = period.decision.dryRun ? [] : period.decision.actions.filter((action) => !done.has(action));
      await commitMemory(context, period, missed).catch((error: unknown) => {
        if (!isDeposed(error)) throw error;
      });
    }
  }

  private providerFor(setup: PoolSetup): Provider {
    let provider = this.providers.get(setup.name);
    if (provider === undefined) {
      provider = setup.createProvider((event) => this.onProviderEvent(setup.name, event));
      this.providers.set(setup.name, provider);
      this.providersDieWithController.set(setup.name, setup.instancesDieWithController);
    }
    return provider;
  }

  private onProviderEvent(pool: string, event: ProviderEvent): void {
    if (event.kind === 'ready' || event.kind === 'not-ready' || this.crashed) return; // reconciliation reports readiness
    void this.timeline.write([{ atMs: event.atMs, source: 'provider', kind: `provider-${event.kind}`, pool, message: event.message }]).catch(() => undefined);
  }

  private async closeProviders(which: (setup: Pick<PoolSetup, 'name' | 'instancesDieWithController'>) => boolean, reason?: string): Promise<void> {
    for (const [name, provider] of [...this.providers]) {
      const instancesDieWithController = this.providersDieWithController.get(name) ?? false;
      if (!which({ name, instancesDieWithController })) continue;
      this.providers.delete(name);
      this.providersDieWithController.delete(name);
      const count = (await provider.list().catch(() => [])).length;
      await provider.close();
      if (reason !== undefined && count > 0) {
        this.logger.warn(`${this.name}: pool ${name}: stopped ${count} instances that die with this controller: ${reason}`);
        await this.record('instances-stopped', `${this.name} stopped its ${count} instances of pool ${name}, which no other controller can manage: ${reason}`, name);
      }
    }
  }

  private async record(kind: string, message: string, pool?: string): Promise<void> {
    const event: Omit<TimelineEvent, 'by'> = { atMs: this.clock(), source: 'autoscaler', kind, message, ...(pool === undefined ? {} : { pool }) };
    await this.timeline.write([event]).catch((error: unknown) => this.logger.warn(`${this.name}: could not record ${kind}: ${(error as Error).message}`));
  }
}
