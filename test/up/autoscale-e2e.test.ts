// The autoscaler end to end with real parts: a store, the control plane, a store-fed proxy and the
// example app's instances started by the process provider (the embedded system `concord up` runs),
// with short windows instead of the production defaults. Load goes up: instances launch, pass their
// checks and only then take traffic. Frozen, more load changes nothing; unfrozen, it scales again.
// Load goes down: instances are drained before they stop and no request fails. A killed instance is
// replaced.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import type { ApiEvent, Overview } from '../../src/control/admin-api-types.ts';
import { EmbeddedSystem } from '../../src/up/embedded-system.ts';

const APP = resolve(fileURLToPath(new URL('../../examples/app/server.mjs', import.meta.url)));
const PERIOD_MS = 1_000;
const MAX_INSTANCES = 4;
/** Bounds for what the autoscaler does within a few periods, generous for a loaded 2-core machine. */
const SCALE_WITHIN_MS = 45_000;

const CONFIG = `
proxy: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 }
pools:
  - name: web
    health:
      http: { path: /healthz, expectStatus: "200-299", expectBody: ok }
      intervalMs: 300
      timeoutMs: 250
      rise: 2
      fall: 2
    slowStart: { windowMs: 2000 }
    autoscale:
      provider:
        process:
          command: "${process.execPath} ${APP} --port {port} --service-time-ms 40 --concurrency 2 --faults 1"
          portRange: "19300-19399"
          stopGraceMs: 3000
      min: 1
      max: ${MAX_INSTANCES}
      periodMs: ${PERIOD_MS}
      target: { inflightPerInstance: 2 }
      scaleOut: { stabilizationMs: 0 }
      scaleIn: { stabilizationMs: 4000, rateLimits: [{ instances: 1, periodMs: 1000 }], cooldownMs: 1000 }
      warmupMs: 1000
      drainDeadlineMs: 5000
      metrics: { maxAgeMs: 5000 }
      replacement: { failingForMs: 2000 }
controlPlane:
  admin: 127.0.0.1:0
  autoscale: { hardMaxInstances: 10, leaseTtlSeconds: 2 }
  membership: { leaseTtlSeconds: 2 }
  health: { refreshMs: 1000, maxResultAgeMs: 5000 }
`;

let workDir: string;
let system: EmbeddedSystem;

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'concord-autoscale-e2e-'));
  const configFile = join(workDir, 'concord.yaml');
  writeFileSync(configFile, CONFIG);
  const quiet = { info: () => {}, warn: () => {} };
  system = await EmbeddedSystem.start({
    configFile, dataDir: join(workDir, 'data'), storeListen: '127.0.0.1:0', peerListen: '127.0.0.1:0', operator: 'test', logger: quiet,
  });
});

after(async () => {
  await system?.stop(2_000);
  rmSync(workDir, { recursive: true, force: true });
});

/** Closed-loop clients through the proxy; records which backend served each request and every failure. */
class Load {
  readonly servedBy = new Map<string, number>(); // port -> first time it served (ms since epoch)
  failures: string[] = [];
  completed = 0;
  private clients = 0;
  private readonly pool: Pool;
  private readonly loops: Promise<void>[] = [];

  constructor(url: string) {
    this.pool = new Pool(url, { connections: 64 });
  }

  /** Runs `count` clients until setClients lowers it; each sends one request at a time. */
  setClients(count: number): void {
    const previous = this.clients;
    this.clients = count;
    for (let id = previous; id < count; id += 1) this.loops.push(this.loop(id));
  }

  private async loop(id: number): Promise<void> {
    while (id < this.clients) {
      try {
        const response = await this.pool.request({ path: '/', method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
        const body = await response.body.text();
        if (response.statusCode !== 200) this.failures.push(`${response.statusCode}: ${body.trim()}`);
        else {
          this.completed += 1;
          const port = String(response.headers['x-served-by']);
          if (!this.servedBy.has(port)) this.servedBy.set(port, Date.now());
        }
      } catch (error) {
        this.failures.push((error as Error).message);
      }
      if (this.clients <= 2) await new Promise((resolvePause) => setTimeout(resolvePause, 20));
    }
  }

  async stop(): Promise<void> {
    this.clients = 0;
    await Promise.all(this.loops);
    await this.pool.close();
  }
}

async function overview(): Promise<Overview> {
  return system.plane.overview();
}

async function pool(): Promise<Overview['pools'][number]> {
  return (await overview()).pools.find((candidate) => candidate.name === 'web')!;
}

async function events(kind?: string): Promise<ApiEvent[]> {
  const response = await fetch(`${system.plane.adminUrl}/api/events?limit=1000`);
  const { events: all } = await response.json() as { events: ApiEvent[] };
  return kind === undefined ? all : all.filter((event) => event.kind === kind);
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}; pool: ${JSON.stringify(await pool().catch(() => null))}`);
    await new Promise((resolvePause) => setTimeout(resolvePause, 200));
  }
}

const healthyCount = async () => (await pool()).backends.filter((backend) => backend.state === 'healthy').length;

async function post(path: string, body: unknown): Promise<void> {
  const response = await fetch(`${system.plane.adminUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(response.status, 200, await response.text());
}

test('load up: instances launch and take traffic only once healthy; frozen: nothing changes; load down: drained, nothing lost; a killed instance is replaced', { timeout: 300_000 }, async () => {
  await waitFor('the minimum instance to be healthy', SCALE_WITHIN_MS, async () => ((await healthyCount()) >= 1 ? true : undefined));
  const load = new Load(system.addresses.proxyUrl);
  try {
    // Up: 8 clients against instances serving 2 at a time, with a target of 2 in flight each.
    load.setClients(8);
    await waitFor(`${MAX_INSTANCES} healthy instances`, SCALE_WITHIN_MS, async () => ((await healthyCount()) >= MAX_INSTANCES ? true : undefined));
    await waitFor('every instance to take traffic', SCALE_WITHIN_MS, () => Promise.resolve(load.servedBy.size >= MAX_INSTANCES ? true : undefined));
    const ready = await events('instance-ready');
    const cascade = (await events()).filter((event) => event.kind === 'ejected' || event.kind === 'panic-started');
    assert.deepEqual(cascade.map((event) => event.summary), [], 'launching instances neither ejects them nor trips the panic threshold (regression)');
    for (const [port, firstServedMs] of load.servedBy) {
      // The process provider names an instance <pool>-<port>-<launch number>.
      const readyEvent = ready.find((event) => event.summary.startsWith(`web-${port}-`));
      assert.ok(readyEvent !== undefined, `instance on port ${port} served traffic but has no instance-ready event`);
      // The proxy learns of readiness through the store: it may send a little later, never earlier
      // than the first passing checks (rise × interval before the ready event, with slack).
      assert.ok(firstServedMs >= Date.parse(readyEvent.at) - 2 * 300 - 250, `port ${port} served at ${firstServedMs}, before it was ready at ${readyEvent.at}`);
    }

    // Frozen: more load, and nothing is launched or terminated for several periods.
    await post('/api/autoscale/freeze', { reason: 'e2e: hold still' });
    const launchesBefore = (await events('launch')).length;
    const terminationsBefore = (await events('terminate')).length;
    const instancesBefore = (await pool()).autoscale!.actual;
    load.setClients(16);
    await new Promise((resolvePause) => setTimeout(resolvePause, 5 * PERIOD_MS));
    assert.equal((await events('launch')).length, launchesBefore, 'no launch while frozen');
    assert.equal((await events('terminate')).length, terminationsBefore, 'no termination while frozen');
    assert.equal((await pool()).autoscale!.actual, instancesBefore);
    assert.equal((await pool()).autoscale!.frozen || (await overview()).frozen.global, true);
    await post('/api/autoscale/unfreeze', {});

    // Down: one slow client; the autoscaler drains and stops instances down to min; nothing fails.
    const failuresBeforeScaleIn = load.failures.length;
    load.setClients(1);
    await waitFor('scale-in to the minimum', SCALE_WITHIN_MS * 2, async () => ((await pool()).autoscale!.actual === 1 && (await pool()).backends.length === 1 ? true : undefined));
    assert.deepEqual(load.failures.slice(failuresBeforeScaleIn), [], 'no request failed while instances were drained and stopped');
    const drains = (await events()).filter((event) => /drain/.test(event.kind));
    assert.ok(drains.length >= MAX_INSTANCES - 1, `each removed instance was drained first (${drains.map((event) => event.kind).join(', ')})`);

    // A killed instance is replaced (the replacement may get the same port back: it is judged by the timeline).
    const victim = (await pool()).backends[0]!.address;
    const crashedAtMs = Date.now();
    const crashed = await fetch(`http://${victim}/fault/crash`, { method: 'POST' });
    assert.equal(crashed.status, 202);
    await waitFor('a replacement instance launched and ready', SCALE_WITHIN_MS, async () => {
      const since = (await events()).filter((event) => Date.parse(event.at) >= crashedAtMs);
      const replaced = since.some((event) => event.kind === 'launch') && since.some((event) => event.kind === 'instance-ready');
      return replaced && (await healthyCount()) >= 1 ? true : undefined;
    });
  } finally {
    await load.stop();
  }
  assert.ok(load.completed > 0);
});
