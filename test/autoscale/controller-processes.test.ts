// `concord controller` as real processes (two of them, each with its own process provider running
// example apps), a real store, a stand-in for the proxies' admin endpoint, and the kill switch set
// with `concord autoscale` and with etcdctl. The leader is killed with SIGKILL and paused with
// SIGSTOP; nothing is simulated inside the controllers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoordStore } from '../../src/coord/coord-store.ts';
import { autoscaleReport } from '../../src/autoscale/controller/kill-switch.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';
import { stopProcess } from '../support/child-processes.ts';
import { APP, instanceRecords, portRange, startTestStore, storeClient, timeline, type TestStore } from './controller-harness.ts';
import { healthy, httpGet, waitFor } from './processes.ts';

const ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const PERIOD_MS = 300;
const LEASE_TTL_SECONDS = 1;
/** A dead leader is replaced within: its lease (TTL), the store's expiry check (100 ms), a period, and slack for a slow machine. */
const TAKEOVER_BOUND_MS = LEASE_TTL_SECONDS * 1000 + 100 + PERIOD_MS + 4_000;
/** Periods watched to see that a frozen autoscaler does nothing. */
const FROZEN_PERIODS = 5;

interface ControllerProcess {
  name: string;
  child: ChildProcess;
  stderr(): string;
}

interface Rig {
  store: TestStore;
  observer: CoordStore;
  configFile: string;
  metricsUrl: string;
  /** In-flight requests over the whole pool, spread by the stand-in proxy over the healthy instances. */
  load: { totalInflight: number };
  controllers: ControllerProcess[];
}

function writeConfig(dir: string): string {
  const file = join(dir, 'concord.yaml');
  writeFileSync(file, [
    'controlPlane:',
    '  autoscale: { hardMaxInstances: 20 }',
    'pools:',
    '  - name: web',
    '    health: { path: /healthz }            # the proxy\'s keys: not read by the controller',
    '    autoscale:',
    `      provider: { process: { command: "${process.execPath} ${APP} --port {port} --service-time-ms 5", portRange: "${portRange(12)}", stopGraceMs: 2000 } }`,
    '      min: 2',
    '      max: 6',
    `      periodMs: ${PERIOD_MS}`,
    '      target: { inflightPerInstance: 4 }',
    '      warmupMs: 0',
    '      drainDeadlineMs: 2000',
    '      scaleOut: { rateLimits: [{ instances: 10, periodMs: 1000 }] }',
    '      scaleIn: { stabilizationMs: 1000, cooldownMs: 0, rateLimits: [{ instances: 10, periodMs: 1000 }] }',
    '',
  ].join('\n'));
  return file;
}

/** What a proxy's admin endpoint would answer: backends from the store's records, health probed, load from the test. */
function standInProxy(observer: CoordStore, load: { totalInflight: number }): Promise<{ server: Server; url: string }> {
  const server = createServer((_request, response) => {
    void (async () => {
      const instances = await instanceRecords(observer, 'web').catch(() => []);
      const health = await Promise.all(instances.map((instance) => healthy(instance.address).catch(() => false)));
      const serving = instances.filter((instance, i) => health[i] && instance.drainingSinceMs === undefined).length;
      const inflight = load.totalInflight / Math.max(1, serving);
      const backends = instances.map((instance, i) => {
        const takesTraffic = health[i]! && instance.drainingSinceMs === undefined;
        return { address: instance.address, healthy: health[i]!, inflight: takesTraffic ? inflight : 0, requestsPerSecond: takesTraffic ? inflight * 10 : 0 };
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ pools: [{ name: 'web', shedPerSecond: 0, errorRatio: 0, latencyMs: { mean: 5, p50: 5, p95: 8, p99: 10 }, backends }] }));
    })();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/backends` })));
}

function startController(rig: Rig, name: string): ControllerProcess {
  const child = spawn(process.execPath, [
    ENTRY, 'controller', '--config', rig.configFile, '--endpoints', rig.store.endpoint, '--name', name, '--metrics-url', rig.metricsUrl, '--lease-ttl-seconds', String(LEASE_TTL_SECONDS),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const controller = { name, child, stderr: () => stderr };
  rig.controllers.push(controller);
  return controller;
}

async function setUp(t: { after: (fn: () => Promise<void> | void) => void }): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-controllers-'));
  const store = await startTestStore();
  const observer = storeClient(store.endpoint);
  const load = { totalInflight: 0 };
  const proxy = await standInProxy(observer, load);
  const rig: Rig = { store, observer, configFile: writeConfig(dir), metricsUrl: proxy.url, load, controllers: [] };
  t.after(async () => {
    for (const controller of rig.controllers) {
      controller.child.kill('SIGCONT');
      await stopProcess(controller.child, { graceMs: 5_000, killWaitMs: 2_000 });
    }
    proxy.server.close();
    observer.close();
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return rig;
}

async function concord(rig: Rig, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [ENTRY, ...args, '--endpoints', rig.store.endpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

async function leaderName(rig: Rig): Promise<string | undefined> {
  return (await autoscaleReport(rig.observer)).leader?.name;
}

async function readyInstances(rig: Rig): Promise<number> {
  return (await instanceRecords(rig.observer, 'web')).filter((i) => i.readyAtMs !== undefined && i.healthy && i.drainingSinceMs === undefined).length;
}

/** Actions (launch, drain, terminate) recorded at or after `sinceMs`. */
async function actionsSince(rig: Rig, sinceMs: number): Promise<string[]> {
  const events = await timeline(rig.observer);
  return events.filter((e) => e.atMs >= sinceMs && ['launch', 'drain', 'terminate'].includes(e.kind)).map((e) => `${e.by} ${e.kind}: ${e.message}`);
}

async function answering(address: string): Promise<boolean> {
  return httpGet(address, '/healthz', 500).then(() => true, () => false);
}

test('freeze with the CLI holds across a SIGKILL of the leader; etcdctl unfreezes and freezes one pool; the CLI unfreezes it', async (t) => {
  const rig = await setUp(t);
  const a = startController(rig, 'ctl-a');
  await waitFor('ctl-a leads with two ready instances', async () => (await leaderName(rig)) === 'ctl-a' && (await readyInstances(rig)) === 2, 20_000);
  const b = startController(rig, 'ctl-b');
  const status = await concord(rig, ['autoscale', 'status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /leader: ctl-a on .* fencing token \d+/);
  assert.match(status.stdout, /pool web: desired 2, actual 2 \(ready 2, draining 0\)/);

  const frozen = await concord(rig, ['autoscale', 'freeze', '--reason', 'incident 4711', '--by', 'alice']);
  assert.equal(frozen.code, 0, frozen.stderr);
  assert.match(frozen.stdout, /frozen every pool \(\/concord\/autoscale\/freeze\)/);
  const frozenAt = Date.now();
  rig.load.totalInflight = 16; // 4 instances at the target of 4 each
  await new Promise((resolve) => setTimeout(resolve, FROZEN_PERIODS * PERIOD_MS));
  assert.deepEqual(await actionsSince(rig, frozenAt), [], 'no action while frozen');
  assert.match((await concord(rig, ['autoscale', 'status'])).stdout, /frozen \(every pool\): yes, by alice at .*: incident 4711[\s\S]*frozen \(global\) by alice/);

  const instancesOfA = (await instanceRecords(rig.observer, 'web')).map((i) => i.address);
  a.child.kill('SIGKILL');
  const killedAt = Date.now();
  await waitFor('ctl-b leads', async () => (await leaderName(rig)) === 'ctl-b', TAKEOVER_BOUND_MS);
  await waitFor('ctl-b decided', async () => (await autoscaleReport(rig.observer)).pools[0]?.status?.leader === 'ctl-b', TAKEOVER_BOUND_MS);
  assert.ok(Date.now() - killedAt <= TAKEOVER_BOUND_MS, `took over in ${Date.now() - killedAt} ms`);
  for (const address of instancesOfA) assert.equal(await answering(address), false, `${address} died with ctl-a: no orphan`);
  await new Promise((resolve) => setTimeout(resolve, FROZEN_PERIODS * PERIOD_MS));
  assert.deepEqual(await actionsSince(rig, frozenAt), [], 'still no action: the freeze holds on the new leader, even with the pool empty');
  assert.ok((await timeline(rig.observer, 'instance-gone')).some((e) => e.by === 'ctl-b'), 'ctl-b dropped the records of the instances that died with ctl-a');

  const etcdctlUnfreeze = await runEtcdctl({ endpoint: rig.store.endpoint, args: ['del', '/concord/autoscale/freeze'] });
  assert.equal(etcdctlUnfreeze.exitCode, 0, etcdctlUnfreeze.stderr);
  await waitFor('ctl-b scales out to 4 after the unfreeze', async () => (await readyInstances(rig)) === 4, 20_000);
  const launches = await timeline(rig.observer, 'launch');
  assert.equal(launches.filter((e) => e.by === 'ctl-a').length, 2, 'ctl-a launched its two');
  assert.equal(launches.filter((e) => e.by === 'ctl-b').length, 4, 'ctl-b launched exactly the four it needed (its own provider starts empty)');

  const etcdctlFreeze = await runEtcdctl({ endpoint: rig.store.endpoint, args: ['put', '/concord/autoscale/freeze/web', 'db maintenance'] });
  assert.equal(etcdctlFreeze.exitCode, 0, etcdctlFreeze.stderr);
  const poolFrozenAt = Date.now();
  rig.load.totalInflight = 2; // asks to scale in
  await new Promise((resolve) => setTimeout(resolve, FROZEN_PERIODS * PERIOD_MS));
  assert.deepEqual(await actionsSince(rig, poolFrozenAt), [], 'no scale-in while the pool is frozen');
  assert.match((await concord(rig, ['autoscale', 'status', '--pool', 'web'])).stdout, /frozen by unknown: db maintenance/);

  const unfrozen = await concord(rig, ['autoscale', 'unfreeze', '--pool', 'web']);
  assert.equal(unfrozen.code, 0, unfrozen.stderr);
  assert.match(unfrozen.stdout, /unfrozen pool web \(was frozen by unknown: db maintenance\)/);
  await waitFor('the pool drains back to 2', async () => (await instanceRecords(rig.observer, 'web')).length === 2, 20_000);
  assert.ok((await timeline(rig.observer, 'drain')).length >= 2);
  const flips = (await timeline(rig.observer)).filter((e) => ['freeze-set', 'freeze-cleared', 'frozen', 'unfrozen'].includes(e.kind)).map((e) => `${e.by} ${e.kind}`);
  assert.deepEqual(flips.filter((flip) => flip.startsWith('concord-cli')), ['concord-cli freeze-set', 'concord-cli freeze-cleared'], 'the CLI records its flips');
  assert.ok(flips.includes('ctl-a frozen') && flips.includes('ctl-b unfrozen'), 'the leaders record what they saw');
  void b;
});

test('a leader stopped with SIGSTOP is replaced; resumed, it finds itself deposed, acts on nothing and stops its orphaned instances', async (t) => {
  const rig = await setUp(t);
  const a = startController(rig, 'ctl-a');
  await waitFor('ctl-a leads with two ready instances', async () => (await leaderName(rig)) === 'ctl-a' && (await readyInstances(rig)) === 2, 20_000);
  startController(rig, 'ctl-b');
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // ctl-b is up and campaigning
  const instancesOfA = (await instanceRecords(rig.observer, 'web')).map((i) => i.address);

  a.child.kill('SIGSTOP');
  await waitFor('ctl-b leads with two ready instances of its own', async () => (await leaderName(rig)) === 'ctl-b' && (await instanceRecords(rig.observer, 'web')).filter((i) => i.readyAtMs !== undefined && !instancesOfA.includes(i.address)).length === 2, TAKEOVER_BOUND_MS + 10_000);
  for (const address of instancesOfA) assert.equal(await answering(address), true, `${address} still runs: its controller is only paused`);
  rig.load.totalInflight = 16; // ctl-b now scales out; a resumed ctl-a would too, if it could
  const resumedAt = Date.now();
  a.child.kill('SIGCONT');
  await waitFor('ctl-a records that it was deposed', async () => (await timeline(rig.observer, 'leader-deposed')).some((e) => e.by === 'ctl-a'), 10_000);
  await waitFor('ctl-a stops the instances nobody else can manage', async () => !(await Promise.all(instancesOfA.map(answering))).some(Boolean), 10_000);
  await waitFor('ctl-b scales out', async () => (await readyInstances(rig)) === 4, 20_000);
  const byA = (await actionsSince(rig, resumedAt)).filter((line) => line.startsWith('ctl-a'));
  assert.deepEqual(byA, [], 'the resumed ctl-a recorded no action');
  assert.ok((await timeline(rig.observer, 'instances-stopped')).some((e) => e.by === 'ctl-a'));
  assert.match(a.stderr(), /no longer leads/);
  assert.equal((await leaderName(rig)), 'ctl-b');
});
