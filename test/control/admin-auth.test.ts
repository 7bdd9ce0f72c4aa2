// Identities end to end, with real processes: a `concord server` member (with its control plane,
// which authenticates as `plane` from a password file) and a store-fed `concord proxy` (as
// `proxyuser`), then users, roles and `auth enable` through etcdctl, as an operator does it. The
// proxy and the control plane keep working once auth is on; the admin API asks for identities
// (401, Basic, the session cookie, 415), the store's roles decide the actions (403 naming the key
// for a read-only user, 200 for the operator, whose name is the event's `by`); the CLI acts with
// --user and fails in one clear line without it; `concord control-plane` serves the admin API over
// TLS with a throwaway certificate and sets a Secure cookie; the proxy's own admin port asks for a
// user allowed to drain; the dashboard's page signs in against it in headless Chromium (a viewer's
// drain refused beside the button, the operator's freeze recorded as the operator); and no password appears in any log line or answer.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { runEtcdctl } from '../compat/etcdctl.ts';
import { makeCa, makeSignedCertificate } from '../support/certificates.ts';
import { checkIdentityContract } from '../ui/identity-contract.ts';
import { backendRow, DEFAULT_WAIT_MS, drainFromPage, freezeFromPage, launchChromium, openSignInForm, signInFromPage, waitForText, type ChromiumSession } from '../ui/dashboard-driver.ts';
import { freeLoopbackPorts, stopProcess } from '../support/child-processes.ts';
import { waitFor } from '../support/store-member.ts';
import { startBackend, type TestBackend } from '../traffic/proxy-harness.ts';

const ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
const PASSWORDS = { root: 'root-Pw-0001', plane: 'plane-Pw-0002', proxyuser: 'proxy-Pw-0003', operator: 'operator-Pw-0004', viewer: 'viewer-Pw-0005' };
/** Bound on the processes starting, and on things that happen within a few refresh periods. */
const START_MS = 20_000;
/** The authenticator re-asks the store whether auth is on every 5 s (AUTH_PROBE_INTERVAL_MS): generous slack. */
const AUTH_NOTICED_MS = 30_000;
const ROOT = `--user=root:${PASSWORDS.root}`;

interface Running {
  child: ChildProcess;
  output: () => string;
}

let dir: string;
let backend: TestBackend;
let clientPort: number;
let adminUrl: string;
let proxyUrl: string;
let proxyAdminUrl: string;
let chromium: ChromiumSession | undefined;
const processes: Running[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

function spawnConcord(args: string[]): Running {
  const child = spawn(process.execPath, [ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const running = { child, output: () => output };
  processes.push(running);
  return running;
}

/** The CLI as its own process (in-process runs swap process.stdout, which the test reporter writes to). */
async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

async function etcdctl(args: string[]): Promise<string> {
  const outcome = await runEtcdctl({ endpoint: `127.0.0.1:${clientPort}`, args });
  assert.equal(outcome.exitCode, 0, `etcdctl ${args.join(' ')} failed: ${outcome.stderr}`);
  return outcome.stdout;
}

function basic(user: keyof typeof PASSWORDS): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}` };
}

async function api(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${adminUrl}${path}`, { method: init.method ?? 'GET', headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }), signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  for (const password of Object.values(PASSWORDS)) assert.ok(!text.includes(password), `the answer to ${path} contains a password`);
  const json = (response.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) as Record<string, unknown> : {};
  return { status: response.status, json, headers: response.headers };
}

function errorOf(json: Record<string, unknown>): { code: string; message: string } {
  return json.error as { code: string; message: string };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'concord-admin-auth-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  backend = await startBackend((_req, res) => res.end('ok'));
  cleanups.push(() => backend.close());
  const [client, peer, admin, proxyListen, proxyAdmin] = await freeLoopbackPorts(5);
  clientPort = client!;
  adminUrl = `http://127.0.0.1:${admin}`;
  proxyUrl = `http://127.0.0.1:${proxyListen}`;
  proxyAdminUrl = `http://127.0.0.1:${proxyAdmin}`;
  writeFileSync(join(dir, 'plane.pw'), `${PASSWORDS.plane}\n`);
  writeFileSync(join(dir, 'proxy.pw'), `${PASSWORDS.proxyuser}\n`);
  spawnConcord([
    'server', '--name', 'm1', '--data-dir', join(dir, 'm1'), '--listen-client-urls', `http://127.0.0.1:${client}`, '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--control-plane-admin', `127.0.0.1:${admin}`, '--control-plane-user', 'plane', '--control-plane-password-file', join(dir, 'plane.pw'),
  ]);
  await waitFor('the control plane\'s admin API', async () => (await fetch(`${adminUrl}/ready`).catch(() => undefined))?.status === 200, START_MS);
  const configFile = join(dir, 'concord.yaml');
  writeFileSync(configFile, stringify({
    controlPlane: { membership: { leaseTtlSeconds: 1 }, health: { refreshMs: 300, maxResultAgeMs: 3000 } },
    pools: [{ name: 'web', backends: [{ address: backend.address }], health: { http: { path: '/healthz' }, intervalMs: 300, timeoutMs: 200 } }],
    routes: [{ pathPrefix: '/', pool: 'web' }],
  }));
  const applied = await runCli(['config', 'apply', configFile, '--endpoints', `127.0.0.1:${client}`]);
  assert.equal(applied.code, 0, applied.stderr);
  const proxyConfig = join(dir, 'proxy.yaml');
  writeFileSync(proxyConfig, stringify({ proxy: { listen: `127.0.0.1:${proxyListen}`, admin: `127.0.0.1:${proxyAdmin}`, store: { url: `etcd://127.0.0.1:${client}`, user: 'proxyuser', passwordFile: join(dir, 'proxy.pw') } } }));
  spawnConcord(['proxy', '--config', proxyConfig, '--name', 'proxy-1']);
  await waitFor('the proxy to serve through the store-fed pool', async () => (await fetch(proxyUrl).catch(() => undefined))?.status === 200, START_MS);

  // Users and roles, then auth on, as docs/control-plane.md "Authentication and TLS" shows.
  await etcdctl(['user', 'add', `root:${PASSWORDS.root}`]);
  for (const service of ['plane', 'proxyuser'] as const) await etcdctl(['user', 'add', `${service}:${PASSWORDS[service]}`]);
  await etcdctl(['role', 'add', 'concord-service']);
  await etcdctl(['role', 'grant-permission', 'concord-service', 'readwrite', '/concord/', '--prefix']);
  for (const service of ['plane', 'proxyuser']) await etcdctl(['user', 'grant-role', service, 'concord-service']);
  await etcdctl(['role', 'add', 'concord-viewer']);
  await etcdctl(['role', 'grant-permission', 'concord-viewer', 'read', '/concord/', '--prefix']);
  await etcdctl(['role', 'add', 'concord-operator']);
  await etcdctl(['role', 'grant-permission', 'concord-operator', 'read', '/concord/', '--prefix']);
  await etcdctl(['role', 'grant-permission', 'concord-operator', 'readwrite', '/concord/autoscale/freeze', '--prefix']);
  await etcdctl(['role', 'grant-permission', 'concord-operator', 'readwrite', '/concord/drains/', '--prefix']);
  await etcdctl(['role', 'grant-permission', 'concord-operator', 'write', '/concord/events/', '--prefix']);
  await etcdctl(['user', 'add', `viewer:${PASSWORDS.viewer}`]);
  await etcdctl(['user', 'grant-role', 'viewer', 'concord-viewer']);
  await etcdctl(['user', 'add', `operator:${PASSWORDS.operator}`]);
  await etcdctl(['user', 'grant-role', 'operator', 'concord-operator']);
  await etcdctl(['auth', 'enable']);
});

after(async () => {
  await chromium?.close();
  for (const running of processes) await stopProcess(running.child, { graceMs: 5_000, killWaitMs: 2_000 });
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('once auth is on, the admin API says so and asks for an identity: 401 without one, 401 for a wrong password', async () => {
  await waitFor('GET /api/session to say authRequired', async () => (await api('/api/session')).json.authRequired === true, AUTH_NOTICED_MS);
  assert.deepEqual((await api('/api/session')).json, { authRequired: true, user: null });
  const anonymous = await api('/api/overview');
  assert.equal(anonymous.status, 401);
  assert.equal(errorOf(anonymous.json).code, 'CONCORD_E_API_UNAUTHENTICATED');
  assert.equal((await api('/metrics')).status, 401);
  assert.equal((await api('/ready')).status, 200, '/ready stays open');
  const wrong = await api('/api/overview', { headers: { authorization: `Basic ${Buffer.from('viewer:not-it').toString('base64')}` } });
  assert.equal(wrong.status, 401);
  assert.match(errorOf(wrong.json).message, /wrong user name or password/);
});

test('the identity contract over HTTP against the real control plane', async () => {
  await waitFor('GET /api/session to say authRequired', async () => (await api('/api/session')).json.authRequired === true, AUTH_NOTICED_MS);
  await checkIdentityContract({
    baseUrl: adminUrl,
    operator: { name: 'operator', password: PASSWORDS.operator },
    viewer: { name: 'viewer', password: PASSWORDS.viewer },
    backend: { pool: 'web', address: backend.address },
  });
});

test('the page against the real control plane: the form, a wrong password, a viewer refused beside the button, sign-out, the operator freezes as operator', async () => {
  chromium = await launchChromium();
  const { page, problems } = await openSignInForm(chromium.context, adminUrl);
  try {
    assert.match(await signInFromPage(page, 'viewer', 'not-it'), /^Not signed in: .*wrong user name or password.*CONCORD_E_API_UNAUTHENTICATED/);
    assert.equal(await signInFromPage(page, 'viewer', PASSWORDS.viewer), '');
    await backendRow(page, 'web', backend.address).waitFor({ timeout: DEFAULT_WAIT_MS });
    const refused = await drainFromPage(page, 'web', backend.address);
    assert.match(refused, /CONCORD_E_API_PERMISSION_DENIED/);
    assert.match(refused, new RegExp(`/concord/drains/web/${backend.address.replace(/[.]/g, '\\.')}`));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in:not([hidden])').waitFor({ timeout: DEFAULT_WAIT_MS });
    assert.equal(await signInFromPage(page, 'operator', PASSWORDS.operator), '');
    await freezeFromPage(page, 'incident 9 from the page');
    await waitForText(page, '#global-freeze-state', /frozen for every pool by operator/);
    const record = JSON.parse(await etcdctl(['get', '/concord/autoscale/freeze', '--print-value-only', ROOT])) as { by: string };
    assert.equal(record.by, 'operator');
    await page.getByRole('button', { name: 'Unfreeze every pool' }).click();
    await waitForText(page, '#global-freeze-state', /Autoscaler active/);
    const memory = await page.evaluate(() => JSON.stringify([Object.entries((globalThis as unknown as { localStorage: object }).localStorage), Object.entries((globalThis as unknown as { sessionStorage: object }).sessionStorage), (globalThis as unknown as { location: { href: string } }).location.href]));
    for (const password of Object.values(PASSWORDS)) assert.ok(!memory.includes(password));
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('the proxy and the control plane, with their own users, keep working after auth enable', async () => {
  const health = async () => BigInt(JSON.parse(await etcdctl(['get', '/concord/health/', '--prefix', '-w', 'json', ROOT])).kvs?.[0]?.mod_revision ?? 0);
  const before = await health();
  await waitFor('the control plane to publish a health result again', async () => (await health()) > before, START_MS);
  for (let i = 0; i < 5; i++) assert.equal((await fetch(proxyUrl)).status, 200);
  const overview = await api('/api/overview', { headers: basic('viewer') });
  assert.equal(overview.status, 200);
  const pools = overview.json.pools as { name: string; backends: { state: string }[] }[];
  assert.deepEqual(pools.map((pool) => pool.name), ['web']);
});

test('a read-only user reads, but freezing is 403 naming the key; the operator freezes and is the event\'s by', async () => {
  assert.equal((await api('/api/events?since=1h', { headers: basic('viewer') })).status, 200);
  const denied = await api('/api/autoscale/freeze', { method: 'POST', headers: { ...basic('viewer'), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'try' }) });
  assert.equal(denied.status, 403);
  assert.equal(errorOf(denied.json).code, 'CONCORD_E_API_PERMISSION_DENIED');
  assert.match(errorOf(denied.json).message, /user 'viewer'.*\/concord\/autoscale\/freeze/);

  const frozen = await api('/api/autoscale/freeze', { method: 'POST', headers: { ...basic('operator'), 'x-concord-operator': 'mallory' }, body: JSON.stringify({ reason: 'incident 9' }) });
  assert.equal(frozen.status, 200, JSON.stringify(frozen.json));
  const record = JSON.parse(await etcdctl(['get', '/concord/autoscale/freeze', '--print-value-only', ROOT])) as { by: string };
  assert.equal(record.by, 'operator', 'the authenticated user, not the self-declared header');
  const events = (await api('/api/events?since=1h', { headers: basic('operator') })).json.events as { kind: string; details: { by: string } }[];
  assert.equal(events.filter((event) => event.kind === 'freeze-set').at(-1)?.details.by, 'operator');
  assert.equal((await api('/api/autoscale/unfreeze', { method: 'POST', headers: basic('operator') })).status, 200);
});

test('sign-in sets an HttpOnly SameSite cookie; cookie POSTs must be JSON (415); sign-out ends the session', async () => {
  const failed = await api('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'viewer', password: 'nope' }) });
  assert.equal(failed.status, 401);
  const login = await api('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'viewer', password: PASSWORDS.viewer }) });
  assert.equal(login.status, 200);
  assert.deepEqual(login.json, { authRequired: true, user: 'viewer' });
  const setCookie = login.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^concord_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/, 'no Secure flag over plain HTTP');
  const cookie = { cookie: setCookie.split(';')[0]! };
  assert.deepEqual((await api('/api/session', { headers: cookie })).json, { authRequired: true, user: 'viewer' });
  assert.equal((await api('/api/overview', { headers: cookie })).status, 200);
  const form = await api('/api/autoscale/freeze', { method: 'POST', headers: { ...cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: 'reason=x' });
  assert.equal(form.status, 415);
  assert.equal(errorOf(form.json).code, 'CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE');
  const json = await api('/api/autoscale/freeze', { method: 'POST', headers: { ...cookie, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'x' }) });
  assert.equal(json.status, 403, 'a JSON POST gets through to the store, which refuses the viewer');
  const logout = await api('/api/logout', { method: 'POST', headers: cookie });
  assert.deepEqual(logout.json, { authRequired: true, user: null });
  assert.match(logout.headers.get('set-cookie') ?? '', /Max-Age=0/);
  assert.equal((await api('/api/overview', { headers: cookie })).status, 401);
});

test('the CLI acts with --user (recorded as the store user); without it, one clear line and exit 1', async () => {
  const endpoint = ['--endpoints', `127.0.0.1:${clientPort}`];
  const without = await runCli(['autoscale', 'status', ...endpoint]);
  assert.equal(without.code, 1);
  assert.equal(without.stderr.trim().split('\n').length, 1, without.stderr);
  assert.match(without.stderr, /authentication on.*--user/);
  const pwFile = join(dir, 'operator.pw');
  writeFileSync(pwFile, PASSWORDS.operator);
  const freeze = await runCli(['autoscale', 'freeze', '--reason', 'from the cli', '--by', 'someone-else', ...endpoint, '--user', 'operator', '--password-file', pwFile]);
  assert.equal(freeze.code, 0, freeze.stderr);
  const record = JSON.parse(await etcdctl(['get', '/concord/autoscale/freeze', '--print-value-only', ROOT])) as { by: string };
  assert.equal(record.by, 'operator');
  const unfreeze = await runCli(['autoscale', 'unfreeze', ...endpoint, '--user', `operator:${PASSWORDS.operator}`]);
  assert.equal(unfreeze.code, 0, unfreeze.stderr);
  const denied = await runCli(['autoscale', 'freeze', '--reason', 'x', ...endpoint, '--user', 'viewer', '--password', PASSWORDS.viewer]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /\/concord\/autoscale\/freeze.*permission denied/);
  assert.ok(!denied.stderr.includes(PASSWORDS.viewer));
  const status = await runCli(['status', ...endpoint, '--user', 'viewer', '--password-file', join(dir, 'missing.pw')]);
  assert.equal(status.code, 2);
  assert.match(status.stderr, /cannot read the password file/);
});

test('concord demo against an admin API that asks for a user: one clear line without --user', async () => {
  const demo = await runCli(['demo', '--admin', adminUrl, '--proxy', proxyUrl]);
  assert.equal(demo.code, 1);
  assert.match(demo.stderr, /asks for a store user.*--user NAME --password-file FILE/);
  const badFlags = await runCli(['demo', '--admin', adminUrl, '--proxy', proxyUrl, '--password', 'x']);
  assert.equal(badFlags.code, 2);
  assert.match(badFlags.stderr, /without a user/);
});

test('the store-fed proxy\'s own admin port: reads stay open, a drain needs a user allowed to write the drain key', async () => {
  assert.equal((await fetch(`${proxyAdminUrl}/backends`)).status, 200, 'the control plane scrapes /backends without credentials');
  const drainUrl = `${proxyAdminUrl}/pools/web/backends/${encodeURIComponent(backend.address)}`;
  const post = (action: string, headers: Record<string, string> = {}) => fetch(`${drainUrl}/${action}`, { method: 'POST', headers });
  const anonymous = await post('drain');
  assert.equal(anonymous.status, 401);
  assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'CONCORD_E_API_UNAUTHENTICATED');
  const viewer = await post('drain', basic('viewer'));
  assert.equal(viewer.status, 403);
  assert.match(((await viewer.json()) as { error: { message: string } }).error.message, new RegExp(`user 'viewer'.*/concord/drains/web/${backend.address}`));
  assert.equal((await post('drain', basic('operator'))).status, 202);
  assert.equal((await post('undrain', basic('operator'))).status, 202);
});

test('concord control-plane with --user and --admin-cert/--admin-key (a throwaway CA): HTTPS, and the session cookie is Secure', async () => {
  const ca = makeCa(dir, 'test-ca');
  const certificate = makeSignedCertificate(dir, 'admin', ca);
  const plane = spawnConcord([
    'control-plane', '--endpoints', `127.0.0.1:${clientPort}`, '--name', 'tls-member', '--admin', '127.0.0.1:0',
    '--user', 'plane', '--password-file', join(dir, 'plane.pw'), '--admin-cert', certificate.cert, '--admin-key', certificate.key,
  ]);
  let url: string | undefined;
  await waitFor('concord control-plane to say where its admin API is', () => {
    url = /admin API and dashboard at (https:\/\/127\.0\.0\.1:\d+)/.exec(plane.output())?.[1];
    return url !== undefined || plane.child.exitCode !== null;
  }, START_MS);
  assert.ok(url !== undefined, `no https admin URL in:\n${plane.output()}`);
  const caPem = readFileSync(ca.cert);
  const answer = await new Promise<{ status: number; cookie: string; body: string }>((resolve, reject) => {
    const body = JSON.stringify({ user: 'viewer', password: PASSWORDS.viewer });
    const request = httpsRequest(`${url}/api/login`, { method: 'POST', ca: caPem, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, cookie: String(response.headers['set-cookie'] ?? ''), body: text }));
    });
    request.on('error', reject);
    request.end(body);
  });
  assert.equal(answer.status, 200, answer.body);
  assert.match(answer.cookie, /HttpOnly; SameSite=Strict; Secure$/);
  await assert.rejects(fetch(`${url}/ready`), 'a client that does not trust the CA is refused');
});

test('no password appears in the log of the server, the proxy or the control plane', () => {
  for (const running of processes) {
    const output = running.output();
    for (const [user, password] of Object.entries(PASSWORDS)) assert.ok(!output.includes(password), `the password of ${user} is in a log:\n${output}`);
  }
  assert.equal(processes.length, 3, 'the server, the proxy and the second control plane');
  assert.ok(processes.every((running) => running.output().length > 0), 'every process logged something (the check looked at real output)');
});
