// The contract's identities (src/ui/api-types.ts, "identities"), checked over plain HTTP against any
// server that claims them: the stub control plane now (test/ui/stub-identities.test.ts), the real
// control plane once its side is merged. Every step says what it sent and what came back.

import assert from 'node:assert/strict';

/** Each request's time limit. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface StoreCredentials {
  name: string;
  password: string;
}

export interface IdentityContractScenario {
  baseUrl: string;
  /** A store user who may write the keys the actions write. */
  operator: StoreCredentials;
  /** A store user who may read but not write them. */
  viewer: StoreCredentials;
  /** A backend that exists: the viewer's drain of it is refused, the operator's drain and undrain succeed. */
  backend: { pool: string; address: string };
}

interface Answer {
  status: number;
  body: unknown;
  setCookie: string | null;
}

async function send(baseUrl: string, method: 'GET' | 'POST', path: string, options: { cookie?: string; basic?: StoreCredentials; body?: unknown; contentType?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.cookie !== undefined) headers.cookie = options.cookie;
  if (options.basic !== undefined) headers.authorization = `Basic ${Buffer.from(`${options.basic.name}:${options.basic.password}`).toString('base64')}`;
  if (method === 'POST') headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(new URL(path, baseUrl), {
    method,
    headers,
    ...(method === 'POST' ? { body: JSON.stringify(options.body ?? {}) } : {}),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  // The stream answers 200 and never ends: only its status matters here.
  const body: unknown = response.headers.get('content-type')?.startsWith('application/json') ? await response.json() : await response.body?.cancel();
  return { status: response.status, body, setCookie: response.headers.get('set-cookie') };
}

function assertError(answer: Answer, status: number, code: string, what: string): string {
  assert.equal(answer.status, status, `${what}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body)}`);
  const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  assert.equal(error?.code, code, `${what}: the error's code`);
  assert.equal(typeof error?.message, 'string', `${what}: the error has a message`);
  return error!.message as string;
}

/** Signs in; returns the cookie to send back (`concord_session=...`), after checking its attributes. */
async function signIn(baseUrl: string, user: StoreCredentials): Promise<string> {
  const answer = await send(baseUrl, 'POST', '/api/login', { body: { user: user.name, password: user.password } });
  assert.equal(answer.status, 200, `login as ${user.name}: ${JSON.stringify(answer.body)}`);
  assert.deepEqual(answer.body, { authRequired: true, user: user.name });
  const cookie = answer.setCookie ?? '';
  assert.match(cookie, /^concord_session=[^;]+/, 'the login sets the concord_session cookie');
  assert.match(cookie, /;\s*HttpOnly/i, 'the session cookie is HttpOnly');
  assert.match(cookie, /;\s*SameSite=Strict/i, 'the session cookie is SameSite=Strict');
  return cookie.split(';')[0]!;
}

export async function checkIdentityContract(scenario: IdentityContractScenario): Promise<void> {
  const { baseUrl, operator, viewer, backend } = scenario;
  const drainPath = `/api/pools/${encodeURIComponent(backend.pool)}/backends/${encodeURIComponent(backend.address)}`;

  assert.deepEqual((await send(baseUrl, 'GET', '/api/session')).body, { authRequired: true, user: null }, 'GET /api/session is open and says authentication is on');
  for (const path of ['/api/overview', '/api/events', '/api/stream']) assertError(await send(baseUrl, 'GET', path), 401, 'CONCORD_E_API_UNAUTHENTICATED', `GET ${path} without an identity`);
  const wrong = await send(baseUrl, 'POST', '/api/login', { body: { user: operator.name, password: `${operator.password}-wrong` } });
  assertError(wrong, 401, 'CONCORD_E_API_UNAUTHENTICATED', 'a login with a wrong password');
  assert.equal(wrong.setCookie, null, 'a refused login sets no cookie');

  const viewerCookie = await signIn(baseUrl, viewer);
  assert.deepEqual((await send(baseUrl, 'GET', '/api/session', { cookie: viewerCookie })).body, { authRequired: true, user: viewer.name });
  assert.equal((await send(baseUrl, 'GET', '/api/overview', { cookie: viewerCookie })).status, 200, 'the viewer reads the overview');
  assert.equal((await send(baseUrl, 'GET', '/api/stream', { cookie: viewerCookie })).status, 200, 'the stream takes the cookie');
  const drainRefused = assertError(await send(baseUrl, 'POST', `${drainPath}/drain`, { cookie: viewerCookie }), 403, 'CONCORD_E_API_PERMISSION_DENIED', "the viewer's drain");
  assert.ok(drainRefused.includes(`/concord/drains/${backend.pool}/${backend.address}`), `the 403 names the key the viewer may not write: ${drainRefused}`);
  const freezeRefused = assertError(await send(baseUrl, 'POST', '/api/autoscale/freeze', { cookie: viewerCookie, body: { reason: 'identity contract check' } }), 403, 'CONCORD_E_API_PERMISSION_DENIED', "the viewer's freeze");
  assert.ok(freezeRefused.includes('/concord/autoscale/freeze'), `the 403 names the key: ${freezeRefused}`);
  assertError(await send(baseUrl, 'POST', `${drainPath}/drain`, { cookie: viewerCookie, contentType: 'text/plain' }), 415, 'CONCORD_E_API_UNSUPPORTED_MEDIA_TYPE', 'a cookie-authenticated POST that is not JSON');

  assert.equal((await send(baseUrl, 'GET', '/api/overview', { basic: operator })).status, 200, 'Basic credentials are an identity too');
  assertError(await send(baseUrl, 'GET', '/api/overview', { basic: { name: operator.name, password: 'wrong' } }), 401, 'CONCORD_E_API_UNAUTHENTICATED', 'Basic credentials with a wrong password');

  const operatorCookie = await signIn(baseUrl, operator);
  for (const action of ['drain', 'undrain']) {
    const answer = await send(baseUrl, 'POST', `${drainPath}/${action}`, { cookie: operatorCookie });
    assert.deepEqual([answer.status, answer.body], [200, { ok: true }], `the operator's ${action}`);
  }

  const loggedOut = await send(baseUrl, 'POST', '/api/logout', { cookie: viewerCookie });
  assert.deepEqual([loggedOut.status, loggedOut.body], [200, { authRequired: true, user: null }], 'POST /api/logout');
  assertError(await send(baseUrl, 'GET', '/api/overview', { cookie: viewerCookie }), 401, 'CONCORD_E_API_UNAUTHENTICATED', 'the cookie of a session that was signed out');
  assert.equal((await send(baseUrl, 'GET', '/api/overview', { cookie: operatorCookie })).status, 200, "another session is not affected by the viewer's sign-out");
}
