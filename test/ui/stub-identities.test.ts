// The stub control plane's authentication mode follows the contract's identities, checked over plain
// HTTP by the same function (identity-contract.ts) that will check the real control plane: so the
// browser tests (dashboard-sign-in.test.ts) run against a server that behaves as the contract says.
// The records of the stub's actions carry the user they were done as.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIdentityContract } from './identity-contract.ts';
import { sampleOverview, StubControlPlane } from './stub-control-plane.ts';

test("the stub's authentication mode follows the contract: open session endpoint, 401, login cookie, 403 naming the key, 415, Basic, logout", async () => {
  const operator = { name: 'alice', password: 'p:with:colons', mayWrite: true };
  const viewer = { name: 'viewer', password: 'viewer-secret', mayWrite: false };
  const stub = await StubControlPlane.start({ overview: sampleOverview(Date.now()), auth: { users: [operator, viewer] } });
  try {
    await checkIdentityContract({ baseUrl: stub.url, operator, viewer, backend: { pool: 'web', address: '127.0.0.1:9101' } });
    assert.deepEqual(stub.drains, [
      { pool: 'web', address: '127.0.0.1:9101', action: 'drain', by: 'alice' },
      { pool: 'web', address: '127.0.0.1:9101', action: 'undrain', by: 'alice' },
    ]);
    assert.deepEqual(stub.freezes, [], "the viewer's freeze was refused");
  } finally {
    await stub.close();
  }
});

test('with authentication off the stub says so and asks nobody for an identity', async () => {
  const stub = await StubControlPlane.start({ overview: sampleOverview(Date.now()) });
  try {
    assert.deepEqual(await (await fetch(`${stub.url}/api/session`)).json(), { authRequired: false, user: null });
    assert.equal((await fetch(`${stub.url}/api/overview`)).status, 200);
    const drain = await fetch(`${stub.url}/api/pools/web/backends/127.0.0.1%3A9101/drain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(drain.status, 200);
    assert.deepEqual(stub.drains, [{ pool: 'web', address: '127.0.0.1:9101', action: 'drain' }], 'no user recorded');
  } finally {
    await stub.close();
  }
});
