// The autoscale controller's reaction times, on a 3-member Concord store and a 3-member etcd in the
// same run (both with their default timing: heartbeat 100 ms, election timeout 1 s, so a 2 s lease
// is the shortest either grants), rounds alternating between them, medians reported:
//
// * takeover: the leader crashes (its keep-alives stop, nothing is resigned): time until another
//   controller has committed its first decision. Bounded by the lease TTL, the store's expiry check
//   and one control period.
// * handover: the leader stops cleanly (resigns): time until the next one has decided.
// * freeze: the kill switch is set at a random point of the period: time until the leader's
//   decision says frozen (within a period, so half of one on average).
// * fencedCommitMs: one fenced transaction (compare the leader key, write a record), the unit every
//   decision and action is made of; median of 200 in a row.
//
//   npx concord bench controller [--rounds 5] [--json]
//
// The last stdout line is the JSON summary.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AutoscaleController } from '../src/autoscale/controller/controller.ts';
import { Fence } from '../src/autoscale/controller/fence.ts';
import { StaticMetricsSource, uniformSample } from '../src/autoscale/controller/metrics-source.ts';
import type { PoolSetup } from '../src/autoscale/controller/pool-period.ts';
import { freeze } from '../src/autoscale/controller/kill-switch.ts';
import { policyConfig } from '../src/autoscale/policy/defaults.ts';
import { statusKey } from '../src/autoscale/state/keys.ts';
import { parsePoolStatus } from '../src/autoscale/state/records.ts';
import { EtcdCoordStore } from '../src/coord/etcd-coord-store.ts';
import { Election } from '../src/coord/recipes.ts';
import { parseStoreLocation } from '../src/coord/store-url.ts';
import { startSystem, SYSTEM_NAMES, type SystemName } from './store-systems.ts';
import { MemoryProvider } from './memory-provider.ts';

const LEASE_TTL_SECONDS = 2;
const PERIOD_MS = 500;
const FENCED_COMMITS = 200;
/** Bound on any one wait; a round that exceeds it fails the benchmark. */
const WAIT_BOUND_MS = 30_000;

const USAGE = `usage: concord bench controller [--rounds N] [--json]

  --rounds N  rounds per store, alternating (default 5)
  --json      print the table on stderr; stdout has only the JSON summary
`;

interface Round {
  takeoverMs: number;
  handoverMs: number;
  freezeMs: number;
  fencedCommitMs: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_BOUND_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function leaderOfStatus(store: EtcdCoordStore, pool: string): Promise<{ leader: string; frozen: boolean } | undefined> {
  const kv = await store.get(statusKey(pool));
  if (kv === undefined) return undefined;
  const parsed = parsePoolStatus(kv.value, kv.key);
  return parsed.ok ? { leader: parsed.value.leader, frozen: parsed.value.frozen !== undefined } : undefined;
}

async function runRound(endpoint: string, round: number): Promise<Round> {
  const pool = `bench-${round}`;
  const config = policyConfig({ pool, min: 3, max: 10, target: { inflightPerInstance: 4 }, periodMs: PERIOD_MS, warmupMs: 0 });
  const provider = new MemoryProvider();
  const setup: PoolSetup = { name: pool, config, launchVersion: 'v1', createProvider: () => provider, instancesDieWithController: false, listGraceMs: 0 };
  const metrics = new StaticMetricsSource();
  metrics.set(pool, uniformSample({ inflightPerInstance: 4 }));
  const clients = [0, 1, 2].map(() => new EtcdCoordStore(parseStoreLocation(endpoint)));
  const observer = new EtcdCoordStore(parseStoreLocation(endpoint));
  const controllers = ['a', 'b', 'c'].map((name, i) => new AutoscaleController({ store: clients[i]!, name: `${pool}-${name}`, pools: [setup], metrics, leaseTtlSeconds: LEASE_TTL_SECONDS }));
  try {
    for (const controller of controllers) controller.start();
    await until('a first leader', async () => (await leaderOfStatus(observer, pool)) !== undefined);
    const first = controllers.find((controller) => controller.role() === 'leader')!;

    await first.crash();
    let started = performance.now();
    await until('a leader after the crash', async () => ((await leaderOfStatus(observer, pool))?.leader ?? first.name) !== first.name);
    const takeoverMs = performance.now() - started;

    const second = controllers.find((controller) => controller.role() === 'leader')!;
    started = performance.now();
    await second.stop();
    await until('a leader after the resignation', async () => ![first.name, second.name].includes((await leaderOfStatus(observer, pool))?.leader ?? first.name));
    const handoverMs = performance.now() - started;

    // At a random point of the leader's period, as an operator would.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * PERIOD_MS));
    started = performance.now();
    await freeze(observer, { by: 'bench', reason: 'measuring', atMs: Date.now() });
    await until('a frozen decision', async () => (await leaderOfStatus(observer, pool))?.frozen === true);
    const freezeMs = performance.now() - started;

    const third = controllers.find((controller) => controller.role() === 'leader')!;
    const leader = await new Election(observer, '/concord/autoscale/leader/').leader();
    const fence = new Fence(observer, { key: leader!.key, token: third.fencingToken()! });
    const times: number[] = [];
    for (let i = 0; i < FENCED_COMMITS; i++) {
      const begun = performance.now();
      await fence.commit([{ kind: 'put', key: `/bench/fenced/${i % 10}`, value: String(i) }]);
      times.push(performance.now() - begun);
    }
    return { takeoverMs, handoverMs, freezeMs, fencedCommitMs: median(times) };
  } finally {
    for (const controller of controllers) await controller.stop();
    await observer.delete('/concord/', { prefix: true }).catch(() => undefined);
    for (const client of [...clients, observer]) client.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { rounds: { type: 'string', default: '5' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const rounds = Number(values.rounds);
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 100) throw new Error(`--rounds must be a whole number from 1 to 100, got '${values.rounds}'`);
  const say = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
  const dataRoot = mkdtempSync(join(tmpdir(), 'concord-bench-controller-'));
  const results: Record<SystemName, Round[]> = { etcd: [], concord: [] };
  const systems = await Promise.all(SYSTEM_NAMES.map((name) => startSystem(name, { dataRoot, logPath: join(dataRoot, `${name}.log`), members: 3 })));
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const system of round % 2 === 1 ? systems : [...systems].reverse()) {
        const measured = await runRound(system.endpoint, round);
        results[system.name].push(measured);
        say(`round ${round} ${system.name}: takeover ${measured.takeoverMs.toFixed(0)} ms, handover ${measured.handoverMs.toFixed(0)} ms, freeze ${measured.freezeMs.toFixed(0)} ms, fenced commit ${measured.fencedCommitMs.toFixed(2)} ms`);
      }
    }
  } finally {
    await Promise.all(systems.map((system) => system.stop()));
    rmSync(dataRoot, { recursive: true, force: true });
  }
  const summary = Object.fromEntries(SYSTEM_NAMES.map((name) => [name, {
    takeoverMs: median(results[name].map((r) => r.takeoverMs)),
    handoverMs: median(results[name].map((r) => r.handoverMs)),
    freezeMs: median(results[name].map((r) => r.freezeMs)),
    fencedCommitMs: median(results[name].map((r) => r.fencedCommitMs)),
  }])) as Record<SystemName, Round>;
  const ratio = Object.fromEntries((Object.keys(summary.etcd) as (keyof Round)[]).map((key) => [key, summary.concord[key] / summary.etcd[key]]));
  say('');
  say(`medians of ${rounds} rounds, 3 members each, lease TTL ${LEASE_TTL_SECONDS} s, period ${PERIOD_MS} ms:`);
  say('| measure | Concord | etcd 3.4 | Concord / etcd |');
  say('|---|---|---|---|');
  for (const key of Object.keys(ratio) as (keyof Round)[]) {
    const digits = key === 'fencedCommitMs' ? 2 : 0;
    say(`| ${key} | ${summary.concord[key].toFixed(digits)} | ${summary.etcd[key].toFixed(digits)} | ${ratio[key]!.toFixed(2)} |`);
  }
  process.stdout.write(`${JSON.stringify({ benchmark: 'controller', rounds, members: 3, leaseTtlSeconds: LEASE_TTL_SECONDS, periodMs: PERIOD_MS, concord: summary.concord, etcd: summary.etcd, ratio })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`concord bench controller: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
