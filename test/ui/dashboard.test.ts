// The dashboard in headless Chromium against the stub control plane: live data appears and follows
// the stream, the operator's buttons reach the API with what they should, the page survives a lost
// stream, and it tells the operator when an action fails. The same page-driving code
// (dashboard-driver.ts) runs against a real `concord up` in the end-to-end test.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backendRow,
  CHROMIUM_PATH,
  checkDashboard,
  DEFAULT_WAIT_MS,
  drainFromPage,
  freezeFromPage,
  launchChromium,
  openDashboard,
  waitForText,
  type ChromiumSession,
  type InPage,
} from './dashboard-driver.ts';
import { sampleEvents, sampleOverview, StubControlPlane } from './stub-control-plane.ts';

/** Overviews come this often from the stub (the real server: about once a second). */
const OVERVIEW_INTERVAL_MS = 250;

let chromium: ChromiumSession;
const stubs: StubControlPlane[] = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM_PATH), `${CHROMIUM_PATH} is missing: install Debian's chromium (sudo bash scripts/install-test-deps.sh)`);
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.close();
  await Promise.all(stubs.map((stub) => stub.close()));
});

async function startStub(): Promise<StubControlPlane> {
  const now = Date.now();
  const stub = await StubControlPlane.start({ overview: sampleOverview(now), events: sampleEvents(now), overviewIntervalMs: OVERVIEW_INTERVAL_MS });
  stubs.push(stub);
  return stub;
}

/** The screenshot's folder: $CONCORD_TEST_OUTPUT_DIR when set (CI keeps it), else a new temp dir. */
async function outputDir(): Promise<string> {
  const fromEnvironment = process.env.CONCORD_TEST_OUTPUT_DIR;
  if (fromEnvironment !== undefined && fromEnvironment !== '') {
    const dir = join(fromEnvironment, 'dashboard');
    await mkdir(dir, { recursive: true });
    return dir;
  }
  return mkdtemp(join(tmpdir(), 'concord-dashboard-test-'));
}

test('the page shows live data, its counter follows the stream, and freeze and drain reach the control plane', async (t) => {
  const stub = await startStub();
  const screenshot = await checkDashboard(chromium.context, {
    baseUrl: stub.url,
    outputDir: await outputDir(),
    member: { name: 'member-a', isLeader: true },
    backend: { pool: 'web', address: '127.0.0.1:9101' },
    eventText: /marked down after 3 failed checks/,
    addRequests: async () => {
      stub.addRequests(250);
      return 250;
    },
    confirmFrozen: async (reason) => assert.deepEqual(stub.freezes, [{ reason }]),
    confirmDrained: async (pool, address) => assert.deepEqual(stub.drains, [{ pool, address, action: 'drain' }]),
  });
  assert.ok(statSync(screenshot).size > 10_000, 'the screenshot is an image of the page, not an empty file');
  t.diagnostic(`screenshot: ${screenshot}`);
});

test('what the page shows: members and roles, backend states in words, shedding, autoscaler, a pool without either', async () => {
  const stub = await startStub();
  const { page, problems } = await openDashboard(chromium.context, stub.url);
  try {
    const learner = page.locator('#members tr', { has: page.locator('th', { hasText: 'member-c' }) });
    assert.match((await learner.textContent({ timeout: DEFAULT_WAIT_MS })) ?? '', /learner/);
    const unhealthy = backendRow(page, 'web', '127.0.0.1:9103');
    assert.match((await unhealthy.textContent()) ?? '', /✗ unhealthy.*✗ failed .* ago: timed out after 1000 ms/);
    assert.match((await backendRow(page, 'web', '127.0.0.1:9102').textContent()) ?? '', /ramping, 35 %/);
    assert.match((await backendRow(page, 'api', '127.0.0.1:9201').textContent()) ?? '', /not checked yet/);
    const web = page.locator('section.pool[aria-labelledby="pool-title-web"]');
    assert.match((await web.locator('.shed').textContent()) ?? '', /Shedding.*gradient2.*Rejected, sheddable\s*340/s);
    assert.match((await web.locator('.autoscale').textContent()) ?? '', /Active \(scaling out\).*Desired\s*4.*Actual\s*3.*2 to 10.*controller-a.*out to 4/s);
    const api = page.locator('section.pool[aria-labelledby="pool-title-api"]');
    assert.match((await api.textContent()) ?? '', /Not autoscaled.*No load shedding configured/s);
    assert.equal(await api.getByRole('button', { name: /Freeze the autoscaler/ }).count(), 0, 'a pool without an autoscaler offers no freeze');

    // A state change in the model reaches the page through the stream alone.
    const row = backendRow(page, 'web', '127.0.0.1:9101');
    stub.overview.pools[0]!.backends[0]!.state = 'ejected';
    await row.locator('.state', { hasText: '⊘ ejected' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.match((await page.locator('#chart-requests canvas').getAttribute('aria-label')) ?? '', /Requests per second: every proxy now 41\.5\/s/);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('per-pool freeze and unfreeze, a refused drain reported with its code, the pool filter, focus kept across refreshes', async () => {
  const stub = await startStub();
  const { page, problems } = await openDashboard(chromium.context, stub.url);
  try {
    await freezeFromPage(page, 'canary of v2 in progress', 'web');
    assert.deepEqual(stub.freezes, [{ pool: 'web', reason: 'canary of v2 in progress' }]);
    const webAutoscale = page.locator('section.pool[aria-labelledby="pool-title-web"] .autoscale-state');
    await webAutoscale.filter({ hasText: 'Frozen by dashboard: canary of v2 in progress' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    await page.getByRole('button', { name: 'Unfreeze the autoscaler of pool web' }).click({ timeout: DEFAULT_WAIT_MS });
    await webAutoscale.filter({ hasText: 'Active' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.deepEqual(stub.unfreezes, [{ pool: 'web' }]);

    // An empty reason is refused by the page itself; nothing is sent.
    await page.getByRole('button', { name: 'Freeze every pool…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Freeze every pool' }).click();
    assert.equal(await page.getByRole('dialog').isVisible(), true, 'the dialog stays open without a reason');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog').waitFor({ state: 'hidden', timeout: DEFAULT_WAIT_MS });
    assert.equal(stub.freezes.length, 1);

    stub.failNextDrain = { status: 409, code: 'CONCORD_E_STUB_CONFLICT', message: 'the pool is being reconfigured' };
    assert.equal(await drainFromPage(page, 'api', '127.0.0.1:9201'), 'Could not drain backend 127.0.0.1:9201 of pool api: the pool is being reconfigured (CONCORD_E_STUB_CONFLICT)');
    assert.deepEqual(stub.drains, []);

    // Undrain is offered for a draining backend, and sends undrain.
    stub.overview.pools[0]!.backends[1]!.state = 'draining';
    assert.match(await drainFromPage(page, 'web', '127.0.0.1:9102', 'undrain'), /is back in rotation/);
    await backendRow(page, 'web', '127.0.0.1:9102').locator('.state', { hasText: 'healthy' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.deepEqual(stub.drains, [{ pool: 'web', address: '127.0.0.1:9102', action: 'undrain' }]);

    await page.getByLabel('Show events of').selectOption('api');
    await waitForText(page, '#events-count', /^\(1\)$/);
    assert.match((await page.locator('#events').textContent()) ?? '', /127\.0\.0\.1:9201 marked up/);
    stub.addEvent({ kind: 'marked-down', pool: 'api', backend: '127.0.0.1:9201', summary: 'api backend down (live)' });
    stub.addEvent({ kind: 'marked-down', pool: 'web', backend: '127.0.0.1:9101', summary: 'web backend down (live)' });
    await page.locator('#events li', { hasText: 'api backend down (live)' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.equal(await page.locator('#events li', { hasText: 'web backend down (live)' }).count(), 0, 'the filter hides other pools');
    await page.getByLabel('Show events of').selectOption('');
    await page.locator('#events li', { hasText: 'web backend down (live)' }).waitFor({ timeout: DEFAULT_WAIT_MS });

    // A keyboard user's focus on a row's button survives the overview refreshes.
    const drainButton = page.getByRole('button', { name: 'Drain backend 127.0.0.1:9201 of pool api' });
    await drainButton.focus();
    const refreshed = stub.addRequests(1);
    await waitForText(page, '#requests-total', new RegExp(`^${refreshed.toLocaleString('en-US')}$`));
    await page.waitForTimeout(3 * OVERVIEW_INTERVAL_MS);
    assert.equal(await page.evaluate(() => (globalThis as unknown as InPage).document.activeElement?.getAttribute('aria-label')), 'Drain backend 127.0.0.1:9201 of pool api');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('the page reconnects after the stream is cut and refused, and fetches the events it missed', async () => {
  const stub = await startStub();
  const { page, problems } = await openDashboard(chromium.context, stub.url);
  try {
    stub.refuseStreams = true;
    stub.dropStreams();
    await waitForText(page, '#connection', /Reconnecting/);
    stub.addEvent({ kind: 'instance-ready', pool: 'web', summary: 'an instance became ready while the page was away' });
    const total = stub.addRequests(5_000);
    stub.refuseStreams = false;
    await waitForText(page, '#connection', /^\W*Live$/);
    await page.locator('#events li', { hasText: 'an instance became ready while the page was away' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    await waitForText(page, '#requests-total', new RegExp(`^${total.toLocaleString('en-US')}$`));
    assert.ok(stub.streamCount >= 1, 'the page holds a stream again');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
