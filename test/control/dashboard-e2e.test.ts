// The dashboard's page in headless Chromium against a real control plane (real store, store-fed
// proxy, backend): the same checks as test/ui/dashboard.test.ts runs against its stub, with the
// hooks doing the real thing — requests through the proxy, the freeze key and the drain key read
// back from the store.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drainKey } from '../../src/control/store-keys.ts';
import { eventually } from '../traffic/proxy-harness.ts';
import { CHROMIUM_PATH, checkDashboard, launchChromium, type ChromiumSession } from '../ui/dashboard-driver.ts';
import { startPlaneStack, type PlaneStack } from './plane-stack.ts';

const REQUESTS = 25;

let chromium: ChromiumSession;
let stack: PlaneStack;
let outputDir: string;

before(async () => {
  assert.ok(existsSync(CHROMIUM_PATH), `${CHROMIUM_PATH} is missing: install Debian's chromium (sudo bash scripts/install-test-deps.sh)`);
  outputDir = await mkdtemp(join(tmpdir(), 'concord-dashboard-e2e-'));
  stack = await startPlaneStack();
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.close();
  await stack?.stop();
  if (outputDir !== undefined && process.env.CONCORD_TEST_OUTPUT_DIR === undefined) await rm(outputDir, { recursive: true, force: true });
});

test('the dashboard against a real control plane: live data, the request counter, freeze and drain reach the store', async (t) => {
  const { admin, plane, backend, proxyUrl } = stack;
  // An event the page must show: an operator's pool freeze, lifted at once.
  const operator = { 'content-type': 'application/json', 'x-concord-operator': 'e2e' };
  for (const [path, body] of [['freeze', { pool: 'web', reason: 'warming up the timeline' }], ['unfreeze', { pool: 'web' }]] as const) {
    assert.equal((await fetch(`${plane.adminUrl}/api/autoscale/${path}`, { method: 'POST', headers: operator, body: JSON.stringify(body) })).status, 200);
  }
  const screenshot = await checkDashboard(chromium.context, {
    baseUrl: plane.adminUrl,
    outputDir,
    member: { name: 'store', isLeader: true },
    backend: { pool: 'web', address: backend.address },
    eventText: /e2e froze the autoscaler for pool web/,
    addRequests: async () => {
      for (let i = 0; i < REQUESTS; i++) assert.equal((await fetch(`${proxyUrl}/r${i}`, { signal: AbortSignal.timeout(5000) })).status, 200);
      return REQUESTS;
    },
    confirmFrozen: async (reason) => {
      const kv = await admin.get('/concord/autoscale/freeze');
      assert.equal(kv === undefined ? undefined : (JSON.parse(kv.value) as { reason: string }).reason, reason);
    },
    confirmDrained: async (pool, address) => {
      assert.ok(await eventually(async () => (await admin.get(drainKey(pool, address))) !== undefined, 5000), 'the drain key is in the store');
    },
  });
  assert.ok(statSync(screenshot).size > 10_000, 'the screenshot is an image of the page');
  t.diagnostic(`screenshot: ${screenshot}`);
});
