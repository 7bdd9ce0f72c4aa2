// The admin authenticator's named limits, on an injected clock, with an in-memory stand-in for
// the store's Authenticate (counting how often the store would be asked): failed sign-ins are
// bounded without asking the store, sessions end when idle, Basic credentials are checked once and
// remembered, the map of sessions is bounded, and auth on/off is re-asked on its interval.
// (test/control/admin-auth.test.ts runs the same module against a real store.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { AdminAuthenticator, FAILED_LOGIN_WINDOW_MS, type IdentityStore } from '../../src/control/admin-auth.ts';
import { ApiProblem } from '../../src/control/api-problem.ts';
import { CoordError, type CoordStore } from '../../src/coord/coord-store.ts';

function standInStore(users: Record<string, string>): IdentityStore & { authentications: number; enabled: boolean; probes: number } {
  const store = {
    authentications: 0,
    enabled: true,
    probes: 0,
    authEnabled: async () => {
      store.probes += 1;
      return store.enabled;
    },
    authenticate: async (user: string, password: string) => {
      store.authentications += 1;
      if (users[user] !== password) throw new CoordError('CONCORD_E_STORE_AUTH_FAILED', 'wrong user name or password');
      return `token-of-${user}`;
    },
    asToken: (token: string) => ({ token }) as unknown as CoordStore,
  };
  return store;
}

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as IncomingMessage;
}

const basicOf = (user: string, password: string) => request({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

function isProblem(status: number, code: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof ApiProblem && error.status === status && error.code === code;
}

test('failed sign-ins past the limit are refused with 429 and Retry-After without asking the store; the window passes', async () => {
  let now = 0;
  const store = standInStore({ alice: 'right' });
  const auth = new AdminAuthenticator(store, { nowMs: () => now, limits: { maxFailedLogins: 3 } });
  for (let i = 0; i < 3; i++) await assert.rejects(auth.login('alice', `wrong-${i}`), isProblem(401, 'CONCORD_E_API_UNAUTHENTICATED'));
  assert.equal(store.authentications, 3);
  await assert.rejects(auth.login('alice', 'right'), (error: unknown) => isProblem(429, 'CONCORD_E_API_TOO_MANY_LOGINS')(error) && Number((error as ApiProblem).headers['retry-after']) > 0);
  await assert.rejects(auth.identify(basicOf('alice', 'wrong-again')), isProblem(429, 'CONCORD_E_API_TOO_MANY_LOGINS'));
  assert.equal(store.authentications, 3, 'the store was not asked past the limit');
  now += FAILED_LOGIN_WINDOW_MS;
  assert.ok((await auth.login('alice', 'right')).length > 20);
  auth.stop();
});

test('a session ends once idle; Basic credentials are checked once, then remembered; the map is bounded', async () => {
  let now = 0;
  const store = standInStore({ alice: 'right', bob: 'pw' });
  const auth = new AdminAuthenticator(store, { nowMs: () => now, limits: { sessionIdleMs: 1_000, maxSessions: 2 } });
  const id = await auth.login('alice', 'right');
  const cookie = request({ cookie: `other=1; concord_session=${id}` });
  assert.equal((await auth.identify(cookie))?.user, 'alice');
  now += 999;
  assert.equal((await auth.identify(cookie))?.via, 'cookie', 'used within the idle limit: still there');
  now += 1_000;
  assert.equal(await auth.identify(cookie), undefined, 'idle for the limit: ended');
  await assert.rejects(auth.require(cookie), (error: unknown) => isProblem(401, 'CONCORD_E_API_UNAUTHENTICATED')(error) && /expired/.test((error as Error).message));

  const before = store.authentications;
  for (let i = 0; i < 3; i++) assert.equal((await auth.identify(basicOf('bob', 'pw')))?.user, 'bob');
  assert.equal(store.authentications, before + 1, 'one Authenticate for repeated Basic credentials');
  await assert.rejects(auth.identify(basicOf('bob', 'not-pw')), isProblem(401, 'CONCORD_E_API_UNAUTHENTICATED'));

  const first = await auth.login('alice', 'right');
  await auth.login('alice', 'right');
  await auth.login('alice', 'right');
  assert.equal(await auth.identify(request({ cookie: `concord_session=${first}` })), undefined, 'the least recently used entry went when the map was full');
  auth.stop();
});

test('whether auth is on is asked again only after the probe interval', async () => {
  let now = 0;
  const store = standInStore({});
  store.enabled = false;
  const auth = new AdminAuthenticator(store, { nowMs: () => now, limits: { probeIntervalMs: 5_000 } });
  assert.equal(await auth.authRequired(), false);
  store.enabled = true;
  now += 4_999;
  assert.equal(await auth.authRequired(), false, 'the last answer stands within the interval');
  now += 1;
  assert.equal(await auth.authRequired(), true);
  assert.equal(store.probes, 2);
  auth.stop();
});
