// `concord chaos --system`: the whole system under faults. A 3-member store (real `concord server`
// processes, each running the control plane), two store-fed proxies (`concord proxy --store`), a
// configuration with one autoscaled pool (process provider), steady HTTP load through both
// proxies, and a KV client recording a history. Faults, seeded and spread over the duration
// (fault-schedule.ts): a backend killed, a backend hung, the autoscaler's leader killed, a store
// member partitioned, a proxy restarted, the kill switch flipped across a leader change. At the
// end everything is healed, the system settles, and each check judges what happened from the
// clients' outcomes, the store's history (store-history.ts) and the operating system's processes
// (instance-processes.ts).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autoscaleReport, freeze, unfreeze } from '../../autoscale/controller/kill-switch.ts';
import { applyConfig } from '../../control/config-store.ts';
import { EtcdCoordStore } from '../../coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../../coord/store-url.ts';
import { SeededRandom } from '../../random/seeded-random.ts';
import { kvModel, type KvOperation } from '../../sim/kv-model.ts';
import { checkHistory } from '../../sim/linearizability.ts';
import { countLostWrites, waitForWrites, Workload, type AckedWrite } from '../chaos-run.ts';
import { KvClient } from '../kv-client.ts';
import { ProcessCluster } from '../process-cluster.ts';
import { acceptedActions, checkFencing } from './autoscaler-fencing-check.ts';
import { detectFailures, type HealthTransition, type InjectedBackendFailure, type InstanceRemoval } from './detection-check.ts';
import { scheduleFaults, SYSTEM_FAULT_KINDS, type ScheduledFault, type SystemFaultKind } from './fault-schedule.ts';
import { HttpLoad } from './http-load.ts';
import { accountInstances } from './instance-accounting-check.ts';
import { InstanceSampler, listInstanceProcesses, signalProcess } from './instance-processes.ts';
import { checkKillSwitch } from './kill-switch-check.ts';
import { ProxyProcess } from './proxy-processes.ts';
import { readStoreHistory, type StoreChange } from './store-history.ts';
import { CHAOS_POOL, SYSTEM_TIMINGS, systemConfigYaml } from './system-config.ts';
import type { PoolOutage, SystemChaosReport, SystemCheck } from './system-report.ts';
import { judgeTraffic, type Window } from './traffic-check.ts';

export interface SystemChaosOptions {
  durationSeconds: number;
  seed: number;
  /** Where data dirs, logs and the report go; a fresh temp folder (removed when the run passes) by default. */
  workDir?: string;
  onProgress?: (line: string) => void;
}

const MIN_INSTANCES = 2;
/** Concurrent clients of the store's workload (each has one operation outstanding). */
const KV_CLIENTS = 3;
const MAX_INSTANCES = 4;
const APP_PATH = fileURLToPath(new URL('../../../examples/app/server.mjs', import.meta.url));
/** Instance ports: a block of this many, placed by the harness's pid so parallel runs rarely meet. */
const PORT_BLOCK_SIZE = 40;
const STARTUP_TIMEOUT_MS = 60_000;
/** After the faults: how long the system gets to reach its steady state (instances recorded = running, at least min). */
const SETTLE_TIMEOUT_MS = 30_000;
/**
 * A pool outage (every instance died with the autoscaler's leader) must end within this: a new
 * leader is elected (lease TTL), reconciles and relaunches (a few periods), the instances pass a
 * check and reach the proxies (the membership lease, a health interval); three times that, plus
 * the longest hold of a freeze.
 */
const MAX_POOL_OUTAGE_MS = 3 * (SYSTEM_TIMINGS.autoscaleLeaseTtlSeconds * 1000 + SYSTEM_TIMINGS.membershipLeaseTtlSeconds * 1000 + 3 * SYSTEM_TIMINGS.autoscalePeriodMs + 2_000) + 3_000;
/** Before each fault: how long to wait for the previous one's recovery. */
const STEADY_TIMEOUT_MS = 15_000;
/** A pool outage ends once this many requests in a row (by start time) succeeded: service is restored. */
const RESTORED_AFTER_SUCCESSES = 20;

interface LiveInstance {
  id: string;
  address: string;
  pid: number;
}

export async function runSystemChaos(options: SystemChaosOptions): Promise<SystemChaosReport> {
  const random = new SeededRandom(options.seed);
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'concord-chaos-system-'));
  const progress = options.onProgress ?? (() => {});
  const runId = `run-${process.pid}-${options.seed}`;
  const started = Date.now();
  const timeline: string[] = [];
  const note = (line: string) => {
    const stamped = `${((Date.now() - started) / 1000).toFixed(1)}s ${line}`;
    timeline.push(stamped);
    progress(stamped);
  };
  const problems: string[] = [];
  const cluster = await ProcessCluster.create({
    size: 3, workDir, heartbeatIntervalMs: 100, electionTimeoutMs: 1_000,
    extraArgs: ['--control-plane-admin', '127.0.0.1:0'], onEvent: note,
  });
  const kvClients = new Map(cluster.names.map((name) => [name, new KvClient(cluster.clientEndpoint(name))]));
  const storeUrl = `etcd://${cluster.endpoints().join(',')}`;
  const admin = new EtcdCoordStore(parseStoreLocation(storeUrl));
  const sampler = new InstanceSampler(runId);
  const proxies: ProxyProcess[] = [];
  let load: HttpLoad | undefined;
  const hung = new Set<number>();
  let stopped = false;
  let elapsedSeconds = 0;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    await stopEverything(cluster, proxies, kvClients, admin);
  };
  try {
    cluster.startAll();
    await waitForWrites(kvClients, 30_000);
    note('store is up');
    const portLow = 30_000 + (process.pid % 500) * PORT_BLOCK_SIZE;
    await applyConfig(admin, systemConfigYaml({
      nodePath: process.execPath, appPath: APP_PATH, portRange: `${portLow}-${portLow + PORT_BLOCK_SIZE - 1}`, runId, minInstances: MIN_INSTANCES, maxInstances: MAX_INSTANCES,
    }), { by: 'concord-chaos', atMs: Date.now() });
    note(`configuration applied: pool ${CHAOS_POOL}, autoscaled ${MIN_INSTANCES}-${MAX_INSTANCES}`);
    sampler.start(200);
    await waitFor('the autoscaler to run its minimum of instances', STARTUP_TIMEOUT_MS, async () => (await liveInstances(admin, sampler)).length >= MIN_INSTANCES);
    for (const name of ['proxy-1', 'proxy-2']) {
      const proxy = await ProxyProcess.create({ name, storeUrl, workDir, onEvent: note });
      proxies.push(proxy);
      proxy.start();
    }
    for (const proxy of proxies) await waitFor(`${proxy.name} to serve`, STARTUP_TIMEOUT_MS, () => servesOk(proxy.url));
    note('proxies serve the pool');

    load = new HttpLoad({
      proxies: proxies.map((proxy) => ({ name: proxy.name, url: proxy.url })),
      workersPerProxy: 3, pauseMs: 20, criticalPercent: 20, postPercent: 10, requestTimeoutMs: 10_000,
      maxRecordedRequests: 500_000, random: new SeededRandom(options.seed + 2),
    });
    load.start();
    const history: KvOperation[] = [];
    const acked: AckedWrite[] = [];
    const workload = new Workload({ clients: kvClients, names: cluster.names, random: new SeededRandom(options.seed + 1), opTimeoutMs: 2_000, keys: 4, history, acked });
    const faultPhaseMs = options.durationSeconds * 1000;
    const runUntil = Date.now() + faultPhaseMs;
    // The store's clients run until the last fault is over (waiting for a steady system may push it past the duration).
    let faultsOver = false;
    const kvLoops = Array.from({ length: KV_CLIENTS }, async (_, id) => {
      for (let round = 0; !faultsOver; round++) await workload.runClient(round * KV_CLIENTS + id, Date.now() + 1_000);
    });

    const injection: Injection = { cluster, admin, sampler, proxies, note, hung, failures: [], outageStarts: [], restarts: new Map(), hangs: [], faults: countsOf() };
    const phaseStart = Date.now();
    for (const fault of scheduleFaults(faultPhaseMs, random)) {
      await sleep(phaseStart + fault.atMs - Date.now());
      // One fault at a time: the previous one's recovery is complete before the next begins.
      await waitFor('the system to be steady', STEADY_TIMEOUT_MS, () => steady(cluster, kvClients, admin, sampler)).catch((error: unknown) => note(`${(error as Error).message}; injecting anyway`));
      await inject(fault, injection).catch((error: unknown) => problems.push(`fault ${fault.kind}: ${(error as Error).message}`));
    }
    await sleep(runUntil - Date.now());
    faultsOver = true;
    await Promise.all(kvLoops);
    await load.stop();
    elapsedSeconds = Math.round((Date.now() - phaseStart) / 1000);
    note(`load done: ${load.outcomes.length} requests, ${history.length} store operations in ${elapsedSeconds} s`);

    // Heal everything, then let the system settle before the end-state checks.
    cluster.relay.healAll();
    for (const pid of hung) signalProcess(pid, 'SIGCONT');
    for (const name of cluster.names) if (!cluster.isRunning(name)) cluster.start(name);
    note('healed; waiting for the pool to settle');
    const settled = await waitFor('the pool to settle', SETTLE_TIMEOUT_MS, async () => settledPool(admin, runId)).then(() => true, () => false);
    const runningAtEnd = listInstanceProcesses(runId);
    const recordedAtEnd = await recordedInstances(admin).catch(() => []);
    if (!settled) problems.push(`the pool did not settle within ${SETTLE_TIMEOUT_MS} ms: recorded ${recordedAtEnd.map((entry) => entry.id).join(', ') || 'none'}, running ${runningAtEnd.map((entry) => entry.instanceId).join(', ') || 'none'}`);

    const changes = await readStoreHistory(admin, 30_000);
    const lostWrites = await countLostWrites(kvClients, acked, problems);
    const checked = checkHistory(kvModel, history);
    const failedPartition = checked.partitions.find((partition) => partition.verdict !== 'linearizable');
    if (failedPartition?.explanation) problems.push(`linearizability: ${failedPartition.explanation.slice(0, 4_000)}`);

    sampler.stop();
    await stopAll();
    const survivors = await survivorsAfterStop(runId);

    return judge({
      options, elapsedSeconds, workDir, changes, injection, outcomes: load.outcomes, runningAtEnd, recordedAtEnd: recordedAtEnd.map((entry) => entry.id), survivors,
      seen: [...sampler.seen.values()], emptyAtMs: sampler.emptyAtMs, lostWrites, linearizabilityVerdict: checked.verdict, kvOperations: history.length, problems, timeline,
    });
  } finally {
    sampler.stop();
    await load?.stop().catch(() => undefined);
    for (const pid of hung) signalProcess(pid, 'SIGCONT');
    await stopAll();
    for (const proxy of proxies) proxy.closeLog();
    // Whatever happened, no instance of this run outlives it.
    for (const leftover of listInstanceProcesses(runId)) signalProcess(leftover.pid, 'SIGKILL');
  }
}

// --- faults --------------------------------------------------------------------------------------

interface Injection {
  cluster: ProcessCluster;
  admin: EtcdCoordStore;
  sampler: InstanceSampler;
  proxies: ProxyProcess[];
  note: (line: string) => void;
  /** Instance processes stopped with SIGSTOP and not yet resumed. */
  hung: Set<number>;
  failures: InjectedBackendFailure[];
  /** When the autoscaler's leader was killed: its instances die with it. */
  outageStarts: { atMs: number; cause: string }[];
  restarts: Map<string, Window[]>;
  /** From SIGSTOP to SIGCONT of a hung backend. */
  hangs: Window[];
  faults: Record<SystemFaultKind, number>;
}

function countsOf(): Record<SystemFaultKind, number> {
  return Object.fromEntries(SYSTEM_FAULT_KINDS.map((kind) => [kind, 0])) as Record<SystemFaultKind, number>;
}

async function inject(fault: ScheduledFault, context: Injection): Promise<void> {
  const { cluster, admin, note } = context;
  note(`fault ${fault.kind} (hold ${fault.holdMs} ms)`);
  switch (fault.kind) {
    case 'kill-backend': {
      const target = await pickInstance(context, fault.pick);
      signalProcess(target.pid, 'SIGKILL');
      context.failures.push({ kind: 'kill', backend: target.address, instanceId: target.id, atMs: Date.now() });
      note(`kill -9 backend ${target.id} (${target.address}, pid ${target.pid})`);
      break;
    }
    case 'hang-backend': {
      const target = await pickInstance(context, fault.pick);
      signalProcess(target.pid, 'SIGSTOP');
      context.hung.add(target.pid);
      context.failures.push({ kind: 'hang', backend: target.address, instanceId: target.id, atMs: Date.now() });
      note(`SIGSTOP backend ${target.id} (${target.address}, pid ${target.pid})`);
      // Held long enough for the checks to mark it down (fall × interval + timeout), with slack.
      const { healthFall, healthIntervalMs, healthTimeoutMs } = SYSTEM_TIMINGS;
      await sleep(Math.max(fault.holdMs, 2 * (healthFall * healthIntervalMs + healthTimeoutMs)));
      signalProcess(target.pid, 'SIGCONT');
      context.hung.delete(target.pid);
      context.hangs.push({ fromMs: context.failures.at(-1)!.atMs, toMs: Date.now() });
      note(`SIGCONT backend ${target.id}`);
      break;
    }
    case 'kill-autoscaler-leader': {
      const leader = await autoscalerLeader(admin);
      context.outageStarts.push({ atMs: Date.now(), cause: `autoscaler leader ${leader} killed` });
      await cluster.kill(leader);
      await sleep(fault.holdMs);
      cluster.start(leader);
      break;
    }
    case 'partition-member': {
      const leader = await autoscalerLeader(admin);
      const candidates = cluster.names.filter((name) => name !== leader);
      const target = candidates[fault.pick % candidates.length]!;
      cluster.relay.partition([target], cluster.names);
      note(`isolated store member ${target}`);
      await sleep(fault.holdMs);
      cluster.relay.healAll();
      note(`healed ${target}`);
      break;
    }
    case 'restart-proxy': {
      const proxy = context.proxies[fault.pick % context.proxies.length]!;
      const window: Window = { fromMs: Date.now(), toMs: Number.POSITIVE_INFINITY };
      context.restarts.set(proxy.name, [...(context.restarts.get(proxy.name) ?? []), window]);
      await proxy.stop();
      proxy.start();
      await proxy.waitServing(STARTUP_TIMEOUT_MS);
      window.toMs = Date.now();
      note(`${proxy.name} serves again after ${window.toMs - window.fromMs} ms`);
      break;
    }
    case 'freeze': {
      await freeze(admin, { by: 'concord-chaos', reason: 'chaos: the kill switch across a leader change', atMs: Date.now() });
      note('kill switch set (every pool)');
      try {
        const leader = await autoscalerLeader(admin);
        context.outageStarts.push({ atMs: Date.now(), cause: `autoscaler leader ${leader} killed while frozen` });
        await cluster.kill(leader);
        const next = await waitFor('a new autoscaler leader', 20_000, async () => {
          const now = await autoscaleReport(admin).catch(() => undefined);
          return now?.leader !== undefined && now.leader.name !== leader ? now.leader.name : undefined;
        });
        note(`${next} leads the autoscaler while frozen`);
        await sleep(fault.holdMs);
        cluster.start(leader);
      } finally {
        await retry(() => unfreeze(admin, { by: 'concord-chaos', atMs: Date.now() }));
        note('kill switch cleared');
      }
      break;
    }
  }
  context.faults[fault.kind]++;
}

async function autoscalerLeader(admin: EtcdCoordStore): Promise<string> {
  return waitFor('an autoscaler leader', 20_000, async () => (await autoscaleReport(admin).catch(() => undefined))?.leader?.name);
}

async function recordedInstances(admin: EtcdCoordStore): Promise<{ id: string; address: string }[]> {
  const report = await autoscaleReport(admin);
  return (report.pools.find((pool) => pool.pool === CHAOS_POOL)?.instances ?? []).map((instance) => ({ id: instance.id, address: instance.address }));
}

/** Instances both recorded in the store and alive as processes (not hung by the run). */
async function liveInstances(admin: EtcdCoordStore, sampler: InstanceSampler): Promise<LiveInstance[]> {
  const recorded = await recordedInstances(admin).catch(() => []);
  const alive = new Map(sampler.sample().filter((view) => view.state !== 'T').map((view) => [view.instanceId, view.pid]));
  return recorded.filter((instance) => alive.has(instance.id)).map((instance) => ({ ...instance, pid: alive.get(instance.id)! }));
}

async function pickInstance(context: Injection, pick: number): Promise<LiveInstance> {
  const candidates = await waitFor('a live backend to fail', 20_000, async () => {
    const live = await liveInstances(context.admin, context.sampler);
    return live.length > 0 ? live.sort((a, b) => (a.id < b.id ? -1 : 1)) : undefined;
  });
  return candidates[pick % candidates.length]!;
}

/** Every member runs and answers, the store takes a write, and the pool has its minimum of live instances. */
async function steady(cluster: ProcessCluster, kvClients: Map<string, KvClient>, admin: EtcdCoordStore, sampler: InstanceSampler): Promise<boolean> {
  if (cluster.names.some((name) => !cluster.isRunning(name))) return false;
  const statuses = await Promise.all([...kvClients.values()].map((client) => client.status(1_000).catch(() => undefined)));
  if (statuses.some((status) => status === undefined || status.leader === 0n)) return false;
  const appliedIndexes = statuses.map((status) => status!.appliedIndex);
  if (Math.max(...appliedIndexes) - Math.min(...appliedIndexes) > 100) return false;
  return (await liveInstances(admin, sampler)).length >= MIN_INSTANCES;
}

async function settledPool(admin: EtcdCoordStore, runId: string): Promise<boolean> {
  const recorded = new Set((await recordedInstances(admin)).map((instance) => instance.id));
  const running = new Set(listInstanceProcesses(runId).map((view) => view.instanceId));
  return running.size >= MIN_INSTANCES && recorded.size === running.size && [...running].every((id) => recorded.has(id));
}

async function stopEverything(cluster: ProcessCluster, proxies: ProxyProcess[], kvClients: Map<string, KvClient>, admin: EtcdCoordStore): Promise<void> {
  await Promise.all(proxies.map((proxy) => proxy.stop().catch(() => undefined)));
  for (const client of kvClients.values()) client.close();
  admin.close();
  await cluster.stopAll();
}

/** Instance processes still alive once every member is gone (they die with their member, at once). */
async function survivorsAfterStop(runId: string): Promise<{ instanceId: string; pid: number }[]> {
  const deadline = Date.now() + 3_000;
  let left = listInstanceProcesses(runId);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = listInstanceProcesses(runId);
  }
  return left;
}

// --- judging -------------------------------------------------------------------------------------

interface JudgeInput {
  options: SystemChaosOptions;
  elapsedSeconds: number;
  workDir: string;
  changes: StoreChange[];
  injection: Injection;
  outcomes: HttpLoad['outcomes'];
  runningAtEnd: { instanceId: string; pid: number }[];
  recordedAtEnd: string[];
  survivors: { instanceId: string; pid: number }[];
  seen: { instanceId: string; pid: number }[];
  emptyAtMs: number[];
  lostWrites: number;
  linearizabilityVerdict: string;
  kvOperations: number;
  problems: string[];
  timeline: string[];
}

interface TimelineEntry {
  atMs: number;
  source?: string;
  kind?: string;
  message?: string;
  data?: { backend?: unknown; detectionMs?: unknown; instanceId?: unknown };
}

function judge(input: JudgeInput): SystemChaosReport {
  const { injection, problems } = input;
  const events = timelineEvents(input.changes);

  const outages = poolOutages(injection.outageStarts, input.emptyAtMs, input.outcomes);
  const traffic = judgeTraffic(input.outcomes, injection.restarts, outages.map((outage) => ({ fromMs: outage.fromMs, toMs: outage.durationMs === null ? Number.POSITIVE_INFINITY : outage.fromMs + outage.durationMs })), injection.hangs);
  problems.push(...traffic.examples);

  const downs: HealthTransition[] = events.filter((event) => event.source === 'health' && event.kind === 'marked-down' && typeof event.data?.backend === 'string').map((event) => ({
    atMs: event.atMs, backend: event.data!.backend as string, ...(typeof event.data?.detectionMs === 'number' ? { checkerDetectionMs: event.data.detectionMs } : {}),
  }));
  const removals: InstanceRemoval[] = events.filter((event) => event.source === 'autoscaler' && (event.kind === 'instance-gone' || event.kind === 'terminate')).map((event) => ({
    atMs: event.atMs, instanceId: typeof event.data?.instanceId === 'string' ? event.data.instanceId : String(event.message ?? '').split(' ')[0]!,
  }));
  const detections = detectFailures(injection.failures, downs, removals);
  for (const detection of detections) if (detection.detectionMs === null) problems.push(`${detection.kind} of backend ${detection.backend} was never detected (no marked-down event, no removal)`);

  const fencing = checkFencing(acceptedActions(input.changes));
  problems.push(...fencing.tokenRegressions.slice(0, 5));
  const killSwitch = checkKillSwitch(input.changes);
  problems.push(...killSwitch.violations.slice(0, 5));
  const acceptedLaunches = events.filter((event) => event.source === 'autoscaler' && event.kind === 'launch').length;
  const accounting = accountInstances({ seenProcesses: input.seen, runningAtEnd: input.runningAtEnd, recordedAtEnd: input.recordedAtEnd, survivorsAfterStop: input.survivors });
  problems.push(...accounting.problems);
  const longOutages = outages.filter((outage) => outage.durationMs === null || outage.durationMs > MAX_POOL_OUTAGE_MS);
  for (const outage of longOutages) problems.push(`pool outage (${outage.cause}) lasted ${outage.durationMs === null ? 'to the end of the run' : `${outage.durationMs} ms`}; at most ${MAX_POOL_OUTAGE_MS} ms expected`);
  const missingFaults = SYSTEM_FAULT_KINDS.filter((kind) => injection.faults[kind] === 0);
  if (missingFaults.length > 0) problems.push(`faults not injected: ${missingFaults.join(', ')}`);

  const linearizable = input.linearizabilityVerdict === 'linearizable';
  const verdicts: Record<SystemCheck, boolean> = {
    traffic: traffic.failedIdempotent === 0,
    detection: detections.every((detection) => detection.detectionMs !== null),
    fencing: fencing.maxConcurrentAutoscalers <= 1 && fencing.tokenRegressions.length === 0,
    instances: accounting.leakedInstances === 0 && accounting.orphanedRecords === 0,
    'kill-switch': killSwitch.violations.length === 0,
    linearizable,
    'lost-writes': input.lostWrites === 0,
    'pool-outages': longOutages.length === 0,
    faults: missingFaults.length === 0,
  };
  const failedChecks = (Object.keys(verdicts) as SystemCheck[]).filter((check) => !verdicts[check]);
  const report: SystemChaosReport = {
    seed: input.options.seed,
    durationSeconds: input.options.durationSeconds,
    faultPhaseSeconds: input.elapsedSeconds,
    requests: traffic.requests,
    successRate: { critical: traffic.byPriority.critical.successRate, default: traffic.byPriority.default.successRate },
    requestsByPriority: {
      critical: { requests: traffic.byPriority.critical.requests, succeeded: traffic.byPriority.critical.succeeded },
      default: { requests: traffic.byPriority.default.requests, succeeded: traffic.byPriority.default.succeeded },
    },
    toRestartingProxy: traffic.toRestartingProxy,
    duringPoolOutage: traffic.duringPoolOutage,
    failedIdempotentRequests: traffic.failedIdempotent,
    failedIdempotentTimedOutOnHungBackend: traffic.timedOutOnHungBackend,
    detectionMs: detections,
    maxConcurrentAutoscalers: fencing.maxConcurrentAutoscalers,
    autoscalerLeaders: fencing.leaders,
    fencingTokenRegressions: fencing.tokenRegressions.length,
    acceptedActions: fencing.actions,
    leakedInstances: accounting.leakedInstances,
    orphanedRecords: accounting.orphanedRecords,
    instances: { launched: accounting.launched, running: accounting.running, terminated: accounting.terminated, acceptedLaunches },
    killSwitchViolations: killSwitch.violations.length,
    freezes: killSwitch.freezes,
    linearizable,
    linearizabilityVerdict: input.linearizabilityVerdict,
    lostWrites: input.lostWrites,
    kvOperations: input.kvOperations,
    poolOutages: outages,
    faults: injection.faults,
    failedChecks,
    problems,
    passed: failedChecks.length === 0,
    workDir: input.workDir,
    replay: `npx concord chaos --system --duration ${input.options.durationSeconds} --seed ${input.options.seed}`,
  };
  writeFileSync(join(input.workDir, 'report.json'), `${JSON.stringify({ ...report, timeline: input.timeline }, null, 2)}\n`);
  writeFileSync(join(input.workDir, 'requests.json'), JSON.stringify(input.outcomes));
  writeFileSync(join(input.workDir, 'store-history.json'), JSON.stringify(input.changes, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
  // A passing run in a temp folder leaves nothing behind; a failing one keeps everything.
  if (report.passed && input.options.workDir === undefined) rmSync(input.workDir, { recursive: true, force: true });
  return report;
}

function timelineEvents(changes: readonly StoreChange[]): TimelineEntry[] {
  const events: TimelineEntry[] = [];
  for (const change of changes) {
    if (change.type !== 'put' || !change.key.startsWith('/concord/events/')) continue;
    try {
      const event = JSON.parse(change.value) as TimelineEntry;
      if (typeof event.atMs === 'number') events.push(event);
    } catch {
      // Not an event: ignored.
    }
  }
  return events;
}

/**
 * Outages of the pool: from each kill of the autoscaler's leader (and each moment no instance was
 * seen alive) until service was restored: the first of RESTORED_AFTER_SUCCESSES requests in a row,
 * started after the outage began, that all succeeded. Overlapping outages merge.
 */
function poolOutages(starts: readonly { atMs: number; cause: string }[], emptyAtMs: readonly number[], outcomes: HttpLoad['outcomes']): PoolOutage[] {
  const candidates = [...starts, ...emptyAtMs.map((atMs) => ({ atMs, cause: 'no instance alive' }))].sort((a, b) => a.atMs - b.atMs);
  const byStart = [...outcomes].sort((a, b) => a.startMs - b.startMs);
  const outages: PoolOutage[] = [];
  for (const start of candidates) {
    const last = outages.at(-1);
    if (last !== undefined && (last.durationMs === null || start.atMs <= last.fromMs + last.durationMs)) continue;
    const restoredAtMs = restoredAfter(byStart, start.atMs);
    outages.push({ cause: start.cause, fromMs: start.atMs, durationMs: restoredAtMs === undefined ? null : restoredAtMs - start.atMs });
  }
  return outages;
}

function restoredAfter(byStart: HttpLoad['outcomes'], fromMs: number): number | undefined {
  let streak = 0;
  let streakStartMs = 0;
  for (const outcome of byStart) {
    if (outcome.startMs < fromMs) continue;
    streak = outcome.ok ? streak + 1 : 0;
    if (streak === 1) streakStartMs = outcome.startMs;
    if (streak >= RESTORED_AFTER_SUCCESSES) return streakStartMs;
  }
  return undefined;
}

// --- helpers -------------------------------------------------------------------------------------

/** Polls `probe` until it returns a value other than false/undefined; throws after timeoutMs. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | false | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

async function retry<T>(act: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await act();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await sleep(500);
    }
  }
}

async function servesOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/work`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
