// `concord chaos --system`: the whole system under faults. A 3-member store (real `concord server`
// processes, each running the control plane), two store-fed proxies (`concord proxy --store`), a
// configuration with one autoscaled pool (process provider), steady HTTP load through both
// proxies, and a KV client recording a history. Faults, seeded and spread over the duration
// (fault-schedule.ts): a backend killed, a backend hung, the autoscaler's leader killed, a store
// member partitioned, a proxy restarted, the kill switch flipped across a leader change. At the
// end everything is healed, the system settles, and each check judges what happened from the
// clients' outcomes, the store's history (store-history.ts) and the operating system's processes
// (instance-processes.ts).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyConfig } from '../../control/config-store.ts';
import { EtcdCoordStore } from '../../coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../../coord/store-url.ts';
import { SeededRandom } from '../../random/seeded-random.ts';
import { kvModel, type KvOperation } from '../../sim/kv-model.ts';
import { checkHistory } from '../../sim/linearizability.ts';
import { countLostWrites, waitForWrites, Workload, type AckedWrite } from '../chaos-run.ts';
import { KvClient } from '../kv-client.ts';
import { ProcessCluster } from '../process-cluster.ts';
import { scheduleFaults } from './fault-schedule.ts';
import { HttpLoad } from './http-load.ts';
import { InstanceSampler, listInstanceProcesses, signalProcess } from './instance-processes.ts';
import { sleep, waitFor } from './polling.ts';
import { ProxyProcess } from './proxy-processes.ts';
import { readStoreHistory } from './store-history.ts';
import { CHAOS_POOL, MAX_INSTANCES, MIN_INSTANCES, systemConfigYaml } from './system-config.ts';
import { countsOf, inject, liveInstances, recordedInstances, steady, type Injection } from './system-faults.ts';
import type { SystemChaosReport } from './system-report.ts';
import { judge } from './system-verdict.ts';

export interface SystemChaosOptions {
  durationSeconds: number;
  seed: number;
  /** Where data dirs, logs and the report go; a fresh temp folder (removed when the run passes) by default. */
  workDir?: string;
  onProgress?: (line: string) => void;
}

/** Concurrent clients of the store's workload (each has one operation outstanding). */
const KV_CLIENTS = 3;
const APP_PATH = fileURLToPath(new URL('../../../examples/app/server.mjs', import.meta.url));
/** Instance ports: a block of this many, placed by the harness's pid so parallel runs rarely meet. */
const PORT_BLOCK_SIZE = 40;
const STARTUP_TIMEOUT_MS = 60_000;
/** After the faults: how long the system gets to reach its steady state (instances recorded = running, at least min). */
const SETTLE_TIMEOUT_MS = 30_000;
/** Before each fault: how long to wait for the previous one's recovery. */
const STEADY_TIMEOUT_MS = 15_000;
/** Steady means, among other things, that every request has succeeded for this long. */
const CLEAN_SERVICE_MS = 2_000;

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

    const httpLoad = new HttpLoad({
      proxies: proxies.map((proxy) => ({ name: proxy.name, url: proxy.url })),
      workersPerProxy: 3, pauseMs: 20, criticalPercent: 20, postPercent: 10, requestTimeoutMs: 10_000,
      maxRecordedRequests: 500_000, random: new SeededRandom(options.seed + 2),
    });
    load = httpLoad;
    httpLoad.start();
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
      await waitFor('the system to be steady', STEADY_TIMEOUT_MS, () => steady(cluster, kvClients, admin, sampler, () => httpLoad.servedCleanlyFor(CLEAN_SERVICE_MS))).catch((error: unknown) => note(`${(error as Error).message}; injecting anyway`));
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

    const changes = await readStoreHistory(admin, 30_000).catch((error: unknown) => {
      problems.push(`the store's history could not be read, so fencing and the kill switch are not judged: ${(error as Error).message}`);
      return undefined;
    });
    const lostWrites = await countLostWrites(kvClients, acked, problems);
    const checked = checkHistory(kvModel, history);
    const failedPartition = checked.partitions.find((partition) => partition.verdict !== 'linearizable');
    if (failedPartition?.explanation) problems.push(`linearizability: ${failedPartition.explanation.slice(0, 4_000)}`);

    sampler.stop();
    await stopAll();
    const survivors = await survivorsAfterStop(runId);

    return judge({
      options, elapsedSeconds, workDir, changes: changes ?? [], historyRead: changes !== undefined, settled, injection, outcomes: load.outcomes, runningAtEnd, recordedAtEnd: recordedAtEnd.map((entry) => entry.id), survivors,
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

async function servesOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/work`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}
