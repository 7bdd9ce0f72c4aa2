// The dashboard's sign-in (issue 9), in headless Chromium against the stub control plane in its
// authentication mode (the contract's "identities"): the form, a wrong password, signing in, the
// actions as a read-only user (403 shown where the action was) and as an operator (recorded with
// the user's name), signing out, and a session that ends under the page (back to the form, with no
// storm of requests). With authentication off the page makes one GET /api/session and nothing else new.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import {
  backendRow,
  DEFAULT_WAIT_MS,
  drainFromPage,
  freezeFromPage,
  launchChromium,
  openDashboard,
  openSignInForm,
  signInFromPage,
  waitForText,
  type ChromiumSession,
} from './dashboard-driver.ts';
import { sampleEvents, sampleOverview, StubControlPlane, type StubUser } from './stub-control-plane.ts';

/** Overviews come this often from the stub (the real server: about once a second). */
const OVERVIEW_INTERVAL_MS = 250;
/** How long the page is watched for requests after its session ended. */
const QUIET_WATCH_MS = 3_000;
/**
 * Requests allowed from the moment the session ends until the sign-in form shows: the stream's one
 * reconnection (refused: 401) and the one GET /api/session that tells the page why, plus one of
 * slack. Once the form shows, none at all. A page that kept retrying would reconnect every 1 s,
 * doubling (the stream's back-off); the stub's stream even asks the browser to retry every 300 ms.
 */
const MAX_REQUESTS_UNTIL_FORM = 3;

const OPERATOR: StubUser = { name: 'alice', password: 'correct horse battery staple', mayWrite: true };
const VIEWER: StubUser = { name: 'viewer', password: 'viewer-secret-42', mayWrite: false };

let chromium: ChromiumSession;
const stubs: StubControlPlane[] = [];

before(async () => {
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.close();
  await Promise.all(stubs.map((stub) => stub.close()));
});

async function startStub(withAuth: boolean): Promise<StubControlPlane> {
  const now = Date.now();
  const stub = await StubControlPlane.start({
    overview: sampleOverview(now),
    events: sampleEvents(now),
    overviewIntervalMs: OVERVIEW_INTERVAL_MS,
    ...(withAuth ? { auth: { users: [OPERATOR, VIEWER] } } : {}),
  });
  stubs.push(stub);
  return stub;
}

/** What the page could have kept: both storages, its URL and the cookies its script can read. */
async function pageMemory(page: Page): Promise<string> {
  return page.evaluate(() => {
    const scope = globalThis as unknown as { localStorage: Storage; sessionStorage: Storage; location: { href: string }; document: { cookie: string } };
    const dump = (storage: Storage) => Array.from({ length: storage.length }, (_, index) => `${storage.key(index)}=${storage.getItem(storage.key(index) ?? '')}`);
    return JSON.stringify({ local: dump(scope.localStorage), session: dump(scope.sessionStorage), url: scope.location.href, cookie: scope.document.cookie });
  });
}

/** The sign-in form, visible. */
function signInForm(page: Page) {
  return page.locator('#sign-in:not([hidden])');
}

test('with authentication off the page asks GET /api/session once and shows no sign-in', async () => {
  const stub = await startStub(false);
  const { page, problems } = await openDashboard(chromium.context, stub.url);
  try {
    await page.waitForTimeout(3 * OVERVIEW_INTERVAL_MS);
    assert.deepEqual(stub.requestsSince(0, /\/api\/(session|login|logout)/), ['GET /api/session']);
    assert.equal(await page.locator('#sign-in').isVisible(), false);
    assert.equal(await page.locator('#identity').isVisible(), false);
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0, 'no sign-out button shows');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('the sign-in form: labelled fields, a wrong password keeps the form with the server message, Enter signs in, nothing keeps the password', async () => {
  const stub = await startStub(true);
  const { page, problems } = await openSignInForm(chromium.context, stub.url);
  const sentUrls: string[] = [];
  page.on('request', (request) => sentUrls.push(request.url()));
  try {
    assert.equal(await page.getByLabel('Password').getAttribute('type'), 'password');
    assert.equal(await page.getByLabel('User').getAttribute('type'), 'text');
    assert.equal(await page.locator('main').isVisible(), false, 'the dashboard is hidden until someone signs in');
    assert.deepEqual(stub.requestsSince(0, /\/api\/(overview|events|stream)/), [], 'nothing but the session is asked for before signing in');

    const refused = await signInFromPage(page, OPERATOR.name, 'not the password');
    assert.equal(refused, 'Not signed in: wrong user name or password (CONCORD_E_API_UNAUTHENTICATED)');
    assert.equal(await signInForm(page).isVisible(), true, 'the form stays');
    assert.equal(await page.getByLabel('User').inputValue(), OPERATOR.name, 'the user name is kept');
    assert.equal(await page.getByLabel('Password').inputValue(), '', 'the wrong password is cleared');

    assert.equal(await signInFromPage(page, OPERATOR.name, OPERATOR.password), '');
    await waitForText(page, '#signed-in-as', /^Signed in as alice$/);
    assert.equal(await signInForm(page).isVisible(), false);
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), true);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id), 'dashboard', 'the focus moves on from the form to the dashboard');
    await backendRow(page, 'web', '127.0.0.1:9101').waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.ok(stub.streamCount >= 1, 'the live stream runs, authenticated by the cookie');

    const memory = await pageMemory(page);
    for (const secret of [OPERATOR.password, 'not the password']) {
      assert.ok(!memory.includes(secret), `the page keeps no password: ${memory}`);
      assert.ok(!sentUrls.some((url) => url.includes(secret) || url.includes(encodeURIComponent(secret))), 'no URL carries a password');
    }
    assert.ok(!memory.includes('concord_session'), 'the session cookie is HttpOnly: the page cannot read it');
    assert.equal(await page.locator('#sign-in-password').inputValue(), '', 'the password field is emptied');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('a read-only user: freeze, unfreeze, drain and undrain are refused with the server message beside them, and the page keeps working', async () => {
  const stub = await startStub(true);
  stub.overview.pools[0]!.autoscale!.frozen = true;
  const { page, problems } = await openSignInForm(chromium.context, stub.url);
  try {
    assert.equal(await signInFromPage(page, VIEWER.name, VIEWER.password), '');

    const drainRefused = 'Could not drain backend 127.0.0.1:9101 of pool web: user viewer may not write /concord/drains/web/127.0.0.1:9101 (the store refused: etcdserver: permission denied) (CONCORD_E_API_PERMISSION_DENIED)';
    assert.equal(await drainFromPage(page, 'web', '127.0.0.1:9101'), drainRefused);
    const web = page.locator('section.pool[aria-labelledby="pool-title-web"]');
    assert.equal((await web.locator('.backends-error').textContent())?.trim(), drainRefused, 'shown under the pool\'s backends, where the button was');

    stub.overview.pools[1]!.backends[0]!.state = 'draining';
    const undrainRefused = await drainFromPage(page, 'api', '127.0.0.1:9201', 'undrain');
    assert.match(undrainRefused, /^Could not undrain backend 127\.0\.0\.1:9201 of pool api: user viewer may not write \/concord\/drains\/api\/127\.0\.0\.1:9201 .*\(CONCORD_E_API_PERMISSION_DENIED\)$/);
    const api = page.locator('section.pool[aria-labelledby="pool-title-api"]');
    assert.equal((await api.locator('.backends-error').textContent())?.trim(), undrainRefused);

    await page.getByRole('button', { name: 'Unfreeze the autoscaler of pool web' }).click();
    await web.locator('.autoscale-error', { hasText: 'user viewer may not write /concord/autoscale/freeze/web' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.match((await web.locator('.autoscale-error').textContent()) ?? '', /CONCORD_E_API_PERMISSION_DENIED/);

    await page.getByRole('button', { name: 'Freeze every pool…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason').fill('looking at the database');
    await dialog.getByRole('button', { name: 'Freeze every pool' }).click();
    await dialog.locator('#freeze-error', { hasText: 'Not frozen: user viewer may not write /concord/autoscale/freeze (the store refused' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: DEFAULT_WAIT_MS });

    assert.deepEqual([stub.freezes, stub.unfreezes, stub.drains], [[], [], []], 'nothing was changed');
    // Still signed in, still live: the counter follows the stream.
    const total = stub.addRequests(700);
    await waitForText(page, '#requests-total', new RegExp(`^${total.toLocaleString('en-US')}$`));
    assert.equal(await signInForm(page).isVisible(), false);
    await waitForText(page, '#connection', /^\W*Live$/);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test("an operator's freeze and drain reach the control plane as that user, every POST as application/json", async () => {
  const stub = await startStub(true);
  const { page, problems } = await openSignInForm(chromium.context, stub.url);
  const postTypes: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST') postTypes.push(`${new URL(request.url()).pathname} ${request.headers()['content-type']}`);
  });
  try {
    assert.equal(await signInFromPage(page, OPERATOR.name, OPERATOR.password), '');
    await freezeFromPage(page, 'incident 4711: hold scaling');
    assert.deepEqual(stub.freezes, [{ reason: 'incident 4711: hold scaling', by: 'alice' }]);
    await waitForText(page, '#global-freeze-state', /frozen for every pool by alice: incident 4711/);
    assert.match(await drainFromPage(page, 'web', '127.0.0.1:9101'), /^Draining backend 127\.0\.0\.1:9101/);
    assert.deepEqual(stub.drains, [{ pool: 'web', address: '127.0.0.1:9101', action: 'drain', by: 'alice' }]);
    await page.getByRole('button', { name: 'Unfreeze every pool' }).click();
    await waitForText(page, '#global-freeze-state', /Autoscaler active/);
    assert.deepEqual(stub.unfreezes, [{ by: 'alice' }]);
    assert.deepEqual(postTypes, [
      '/api/login application/json',
      '/api/autoscale/freeze application/json',
      '/api/pools/web/backends/127.0.0.1%3A9101/drain application/json',
      '/api/autoscale/unfreeze application/json',
    ]);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('sign-out ends the session, shows the form and forgets the data; signing in again resumes', async () => {
  const stub = await startStub(true);
  const { page, problems } = await openSignInForm(chromium.context, stub.url);
  try {
    assert.equal(await signInFromPage(page, OPERATOR.name, OPERATOR.password), '');
    await backendRow(page, 'web', '127.0.0.1:9101').waitFor({ timeout: DEFAULT_WAIT_MS });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInForm(page).waitFor({ timeout: DEFAULT_WAIT_MS });
    await waitForText(page, '#sign-in-note', /^Signed out\.$/);
    assert.equal(stub.requestsSince(0, /POST \/api\/logout/).length, 1);
    assert.equal(await page.locator('#identity').isVisible(), false);
    assert.equal(await page.locator('section.pool').count(), 0, 'the pools drawn before are gone from the page');
    assert.equal(await page.locator('#events li').count(), 0, 'and so are the events');
    assert.equal(await page.evaluate(() => fetch('/api/overview').then((response) => response.status)), 401, 'the server ended the session too');

    const quietFrom = stub.requests.length;
    await page.waitForTimeout(QUIET_WATCH_MS);
    assert.deepEqual(stub.requestsSince(quietFrom), [], 'a signed-out page makes no requests');

    stub.addEvent({ kind: 'marked-up', pool: 'web', backend: '127.0.0.1:9103', summary: 'happened while nobody was signed in' });
    assert.equal(await signInFromPage(page, VIEWER.name, VIEWER.password), '');
    await waitForText(page, '#signed-in-as', /^Signed in as viewer$/);
    await page.locator('#events li', { hasText: 'happened while nobody was signed in' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    await backendRow(page, 'web', '127.0.0.1:9101').waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('a session that ends under the page: back to the form, the stream stopped without a storm of requests; signing in again resumes', async (t) => {
  const stub = await startStub(true);
  const { page, problems } = await openSignInForm(chromium.context, stub.url);
  try {
    assert.equal(await signInFromPage(page, OPERATOR.name, OPERATOR.password), '');
    await backendRow(page, 'web', '127.0.0.1:9101').waitFor({ timeout: DEFAULT_WAIT_MS });

    // Expired, and the stream cut (a restarted control plane): the stream's reconnection meets the 401.
    const endedAt = stub.requests.length;
    stub.expireSessions();
    await signInForm(page).waitFor({ timeout: DEFAULT_WAIT_MS });
    await waitForText(page, '#sign-in-note', /session has ended/);
    const untilForm = stub.requestsSince(endedAt);
    t.diagnostic(`requests from the session's end until the form showed: ${untilForm.join(', ')}`);
    assert.ok(untilForm.length <= MAX_REQUESTS_UNTIL_FORM, `at most ${MAX_REQUESTS_UNTIL_FORM} requests until the form shows, got ${untilForm.join(', ')}`);
    assert.equal(await page.locator('#identity').isVisible(), false);
    const quietFrom = stub.requests.length;
    await page.waitForTimeout(QUIET_WATCH_MS);
    assert.deepEqual(stub.requestsSince(quietFrom), [], `no request in the ${QUIET_WATCH_MS} ms after the form showed`);
    assert.equal(stub.streamCount, 0, 'no stream is held');

    // Signing in again: everything resumes, and what happened meanwhile is fetched.
    stub.addEvent({ kind: 'instance-ready', pool: 'web', summary: 'ready while the session was over' });
    const total = stub.addRequests(3_000);
    assert.equal(await signInFromPage(page, OPERATOR.name, OPERATOR.password), '');
    await page.locator('#events li', { hasText: 'ready while the session was over' }).waitFor({ timeout: DEFAULT_WAIT_MS });
    await waitForText(page, '#requests-total', new RegExp(`^${total.toLocaleString('en-US')}$`));
    assert.ok(stub.streamCount >= 1, 'the stream runs again');

    // Expired with the stream left open: the next action meets the 401 and the form comes back.
    stub.expireSessions({ cutStreams: false });
    await page.getByRole('button', { name: 'Drain backend 127.0.0.1:9201 of pool api' }).click();
    await signInForm(page).waitFor({ timeout: DEFAULT_WAIT_MS });
    await waitForText(page, '#sign-in-note', /session has ended \(the session has expired or is unknown: sign in again\)/);
    assert.deepEqual(stub.drains, []);
    const closedAt = Date.now();
    while (stub.streamCount > 0 && Date.now() - closedAt < DEFAULT_WAIT_MS) await page.waitForTimeout(100);
    assert.equal(stub.streamCount, 0, 'the page closed its stream');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
