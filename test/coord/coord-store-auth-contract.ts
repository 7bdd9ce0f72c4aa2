// The CoordStore contract with the store's authentication on, run against each backend (the
// embedded Concord store and a real etcd 3.4) on a member of its own: users, roles and `auth enable`
// are set up with etcdctl, as an operator does. Credentials given while auth is off keep working
// once it is turned on; tokens the store forgets (auth disable + enable clears them on both) are
// renewed once per call, for unary calls and watches; refusals carry Concord's codes and never the
// password.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordError } from '../../src/coord/coord-store.ts';
import { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { parseStoreLocation } from '../../src/coord/store-url.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';
import type { ContractBackend } from './coord-store-contract.ts';

const ROOT = '--user=root:rootpw';
const ALICE_PASSWORD = 'alice-secret-pw';
/** Bound on waiting for a watch event the store should deliver promptly. */
const EVENT_WAIT_MS = 5_000;

function isCoordError(code: string, pattern?: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof CoordError, `expected a CoordError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, new RegExp(ALICE_PASSWORD));
    return true;
  };
}

export function defineCoordStoreAuthContract(backendName: string, start: () => Promise<ContractBackend>): void {
  describe(`${backendName} with authentication on`, () => {
    let backend: ContractBackend;
    const clients: EtcdCoordStore[] = [];
    const open = (credentials?: { user: string; password: string }) => {
      const client = new EtcdCoordStore(parseStoreLocation(backend.endpoint), { requestTimeoutMs: 3_000, ...(credentials === undefined ? {} : { credentials }) });
      clients.push(client);
      return client;
    };
    const etcdctl = async (args: string) => {
      const outcome = await runEtcdctl({ endpoint: backend.endpoint, args: args.split(' ') });
      assert.equal(outcome.exitCode, 0, `etcdctl ${args} failed: ${outcome.stderr}`);
    };
    let alice: EtcdCoordStore;

    before(async () => {
      backend = await start();
      await etcdctl('user add root:rootpw');
      await etcdctl(`user add alice:${ALICE_PASSWORD}`);
      await etcdctl('role add app');
      await etcdctl('role grant-permission app readwrite /app/ --prefix');
      await etcdctl('user grant-role alice app');
    });
    after(async () => {
      for (const client of clients) client.close();
      await backend?.stop();
    });

    test(`${backendName}: credentials given while auth is off work, and keep working once it is turned on (a watch, then writes)`, async () => {
      alice = open({ user: 'alice', password: ALICE_PASSWORD });
      await alice.put('/app/before', 'off');
      assert.equal(await alice.authEnabled(), false);
      await etcdctl('auth enable');
      assert.equal(await alice.authEnabled(), true);
      // A watch first: its stream goes without a token (auth was off), is refused, and renews.
      const watch = await alice.watch('/app/', { prefix: true }, { onEvents: () => {} });
      await watch.cancel();
      await alice.put('/app/after', 'on');
      assert.equal((await alice.get('/app/before'))?.value, 'off');
    });

    test(`${backendName}: without credentials, or with a wrong password, calls fail with CONCORD_E_STORE_AUTH_FAILED saying what to do`, async () => {
      await assert.rejects(open().get('/app/after'), isCoordError('CONCORD_E_STORE_AUTH_FAILED', /authentication on.*--user/));
      const wrong = open({ user: 'alice', password: `${ALICE_PASSWORD}-wrong` });
      await assert.rejects(wrong.get('/app/after'), isCoordError('CONCORD_E_STORE_AUTH_FAILED', /refused user 'alice'/));
      await assert.rejects(open().authenticate('alice', 'nope'), isCoordError('CONCORD_E_STORE_AUTH_FAILED', /wrong user name or password/));
    });

    test(`${backendName}: a user's role decides: its prefix is read and written, a key outside is CONCORD_E_STORE_PERMISSION_DENIED naming the key`, async () => {
      const txn = await alice.txn({ compare: [{ key: '/app/after', target: 'value', result: '=', value: 'on' }], success: [{ kind: 'put', key: '/app/txn', value: 'yes' }] });
      assert.equal(txn.succeeded, true);
      assert.deepEqual((await alice.range('/app/', { prefix: true })).kvs.map((kv) => kv.key), ['/app/after', '/app/before', '/app/txn']);
      assert.equal((await alice.delete('/app/txn')).deleted, 1);
      await assert.rejects(alice.put('/other/key', 'x'), isCoordError('CONCORD_E_STORE_PERMISSION_DENIED', /put \/other\/key .*as user 'alice'/));
      await assert.rejects(alice.txn({ compare: [], success: [{ kind: 'put', key: '/other/freeze', value: 'x' }] }), isCoordError('CONCORD_E_STORE_PERMISSION_DENIED', /\/other\/freeze/));
    });

    test(`${backendName}: watches and leases work with a token; a watch the role does not allow is refused`, async () => {
      const seen: string[] = [];
      const watch = await alice.watch('/app/watched', {}, { onEvents: (events) => seen.push(...events.map((event) => event.kv.value)) });
      const lease = await alice.grantLease(2);
      await alice.put('/app/watched', 'leased', { lease: lease.id });
      await lease.keepAliveOnce();
      const deadline = Date.now() + EVENT_WAIT_MS;
      while (!seen.includes('leased') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(seen, ['leased']);
      await lease.revoke();
      assert.equal(await alice.get('/app/watched'), undefined);
      await watch.cancel();
      await assert.rejects(alice.watch('/other/', { prefix: true }, { onEvents: () => {} }), isCoordError('CONCORD_E_STORE_PERMISSION_DENIED'));
    });

    test(`${backendName}: tokens the store forgot (auth disable, enable) are renewed: unary calls and a new watch go on`, async () => {
      await alice.put('/app/renew', 'before');
      await etcdctl(`auth disable ${ROOT}`);
      await etcdctl('auth enable');
      await alice.put('/app/renew', 'after');
      const watch = await alice.watch('/app/renew', { fromRevision: 1n }, { onEvents: () => {} });
      await watch.cancel();
      assert.equal((await alice.get('/app/renew'))?.value, 'after');
    });

    test(`${backendName}: authenticate gives a token that acts as its user on the same connections (asToken)`, async () => {
      const service = open({ user: 'root', password: 'rootpw' });
      const token = await service.authenticate('alice', ALICE_PASSWORD);
      const asAlice = service.asToken(token);
      await asAlice.put('/app/as-token', 'alice');
      await assert.rejects(asAlice.put('/concord/autoscale/freeze', '{}'), isCoordError('CONCORD_E_STORE_PERMISSION_DENIED', /\/concord\/autoscale\/freeze/));
      // The service's own identity is untouched by the user's calls.
      await service.put('/concord/autoscale/freeze-test', 'root may');
      await assert.rejects(service.asToken('not-a-token').get('/app/as-token'), isCoordError('CONCORD_E_STORE_AUTH_FAILED', /sign in again/));
    });
  });
}
