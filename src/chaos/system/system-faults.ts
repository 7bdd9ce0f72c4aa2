// The faults of a system chaos run, carried out on the real processes: which backend, member or
// proxy each one hits is found when it starts (the schedule's seeded pick among the candidates).
// Each records what the checks need: injected backend failures (for detection times), leader kills
// (pool outages), proxy restart windows and hang windows (for the traffic check).

import { autoscaleReport, freeze, unfreeze } from '../../autoscale/controller/kill-switch.ts';
import type { EtcdCoordStore } from '../../coord/etcd-coord-store.ts';
import type { KvClient } from '../kv-client.ts';
import type { ProcessCluster } from '../process-cluster.ts';
import type { InjectedBackendFailure } from './detection-check.ts';
import { SYSTEM_FAULT_KINDS, type ScheduledFault, type SystemFaultKind } from './fault-schedule.ts';
import { signalProcess, type InstanceSampler } from './instance-processes.ts';
import { retry, sleep, waitFor } from './polling.ts';
import type { ProxyProcess } from './proxy-processes.ts';
import { CHAOS_POOL, MIN_INSTANCES, SYSTEM_TIMINGS } from './system-config.ts';
import type { Window } from './traffic-check.ts';

/** How long a new autoscaler leader may take to be elected once the old one is dead: its lease TTL, with slack. */
const NEW_LEADER_TIMEOUT_MS = 10 * SYSTEM_TIMINGS.autoscaleLeaseTtlSeconds * 1000;
/** How long a restarted proxy gets to answer again. */
const PROXY_RESTART_TIMEOUT_MS = 60_000;

export interface LiveInstance {
  id: string;
  address: string;
  pid: number;
}

export interface Injection {
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

export function countsOf(): Record<SystemFaultKind, number> {
  return Object.fromEntries(SYSTEM_FAULT_KINDS.map((kind) => [kind, 0])) as Record<SystemFaultKind, number>;
}

export async function inject(fault: ScheduledFault, context: Injection): Promise<void> {
  const { cluster, admin, note } = context;
  note(`fault ${fault.kind} (hold ${fault.holdMs} ms)`);
  switch (fault.kind) {
    case 'kill-backend': {
      const target = await pickInstance(context, fault.pick);
      context.failures.push({ kind: 'kill', backend: target.address, instanceId: target.id, atMs: Date.now() });
      signalProcess(target.pid, 'SIGKILL');
      note(`kill -9 backend ${target.id} (${target.address}, pid ${target.pid})`);
      break;
    }
    case 'hang-backend': {
      const target = await pickInstance(context, fault.pick);
      context.failures.push({ kind: 'hang', backend: target.address, instanceId: target.id, atMs: Date.now() });
      signalProcess(target.pid, 'SIGSTOP');
      context.hung.add(target.pid);
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
      await proxy.waitServing(PROXY_RESTART_TIMEOUT_MS);
      window.toMs = Date.now();
      note(`${proxy.name} serves again after ${window.toMs - window.fromMs} ms`);
      break;
    }
    case 'freeze': {
      await freeze(admin, { by: 'concord-chaos', reason: 'chaos: the kill switch across a leader change', atMs: Date.now() });
      note('kill switch set (every pool)');
      let killed: string | undefined;
      try {
        killed = await autoscalerLeader(admin);
        context.outageStarts.push({ atMs: Date.now(), cause: `autoscaler leader ${killed} killed while frozen` });
        await cluster.kill(killed);
        const next = await waitFor('a new autoscaler leader', NEW_LEADER_TIMEOUT_MS, async () => {
          const now = await autoscaleReport(admin).catch(() => undefined);
          return now?.leader !== undefined && now.leader.name !== killed ? now.leader.name : undefined;
        });
        note(`${next} leads the autoscaler while frozen`);
        await sleep(fault.holdMs);
      } finally {
        await retry(() => unfreeze(admin, { by: 'concord-chaos', atMs: Date.now() }));
        note('kill switch cleared');
        if (killed !== undefined) cluster.start(killed);
      }
      break;
    }
  }
  context.faults[fault.kind]++;
}

async function autoscalerLeader(admin: EtcdCoordStore): Promise<string> {
  return waitFor('an autoscaler leader', 20_000, async () => (await autoscaleReport(admin).catch(() => undefined))?.leader?.name);
}

export async function recordedInstances(admin: EtcdCoordStore): Promise<{ id: string; address: string }[]> {
  const report = await autoscaleReport(admin);
  return (report.pools.find((pool) => pool.pool === CHAOS_POOL)?.instances ?? []).map((instance) => ({ id: instance.id, address: instance.address }));
}

/** Instances both recorded in the store and alive as processes (not hung by the run). */
export async function liveInstances(admin: EtcdCoordStore, sampler: InstanceSampler): Promise<LiveInstance[]> {
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

/**
 * Every member runs and answers with a leader, their logs are close, the pool has its minimum of
 * live instances, and the clients' requests have all succeeded for a while (the proxies see the
 * pool whole again: no backend left ejected or unchecked by the previous fault).
 */
export async function steady(cluster: ProcessCluster, kvClients: Map<string, KvClient>, admin: EtcdCoordStore, sampler: InstanceSampler, servingCleanly: () => boolean): Promise<boolean> {
  if (!servingCleanly()) return false;
  if (cluster.names.some((name) => !cluster.isRunning(name))) return false;
  const statuses = await Promise.all([...kvClients.values()].map((client) => client.status(1_000).catch(() => undefined)));
  if (statuses.some((status) => status === undefined || status.leader === 0n)) return false;
  const appliedIndexes = statuses.map((status) => status!.appliedIndex);
  if (Math.max(...appliedIndexes) - Math.min(...appliedIndexes) > 100) return false;
  return (await liveInstances(admin, sampler)).length >= MIN_INSTANCES;
}
