// Pools from a PoolSource that changes at run time (the store, later): a backend added live gets
// traffic only after a passing health check, a removed one gets none, and requests keep flowing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/control/config.ts';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import type { PoolSnapshot, PoolSource } from '../../src/traffic/proxy/pool-source.ts';
import { ProxyServer } from '../../src/traffic/proxy/proxy-server.ts';
import { eventually, LogSink, startBackend } from './proxy-harness.ts';

class ChangingSource implements PoolSource {
  private snapshot: PoolSnapshot;
  private listener: ((snapshot: PoolSnapshot) => void) | undefined;

  constructor(snapshot: PoolSnapshot) {
    this.snapshot = snapshot;
  }

  current(): PoolSnapshot {
    return this.snapshot;
  }

  watch(onChange: (snapshot: PoolSnapshot) => void): () => void {
    this.listener = onChange;
    return () => (this.listener = undefined);
  }

  publish(snapshot: PoolSnapshot): void {
    this.snapshot = snapshot;
    this.listener?.(snapshot);
  }
}

// Fall 3: on a busy machine one slow probe must not mark the old backend
// down, which would put the pool in panic mode and send traffic to the unready one too.
function snapshotWith(addresses: string[]): PoolSnapshot {
  const config = validateConfig({
    pools: [{ name: 'web', balance: 'round-robin', slowStart: { windowMs: 0 }, backends: addresses.map((address) => ({ address })), health: { http: { path: '/healthz' }, intervalMs: 100, timeoutMs: 100, rise: 1, fall: 3 } }],
  });
  return { pools: config.pools, routes: config.routes };
}

test('backends added live wait for a passing check; removed ones stop getting traffic', async () => {
  let newReady = false;
  const old = await startBackend((_req, res) => res.end('old'));
  const added = await startBackend((req, res) => {
    if (req.url === '/healthz') res.writeHead(newReady ? 200 : 503).end();
    else res.end('new');
  });
  const source = new ChangingSource(snapshotWith([old.address]));
  const settings = validateConfig({ proxy: { listen: '127.0.0.1:0', admin: '127.0.0.1:0' } }).proxy;
  const proxy = await ProxyServer.start({ settings, source, seed: 1, log: new AccessLog(new LogSink() as unknown as ConstructorParameters<typeof AccessLog>[0]) });
  const url = `http://127.0.0.1:${proxy.trafficAddress.port}/`;
  const bodies = async (count: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) seen.add(await (await fetch(url)).text());
    return seen;
  };
  try {
    assert.deepEqual(await bodies(4), new Set(['old']));
    source.publish(snapshotWith([old.address, added.address]));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(await bodies(6), new Set(['old']), 'not ready: no traffic yet');
    newReady = true;
    assert.ok(await eventually(async () => (await bodies(4)).has('new'), 8000), 'ready: traffic arrives');
    source.publish(snapshotWith([added.address]));
    assert.deepEqual(await bodies(6), new Set(['new']), 'the removed backend gets nothing');
    assert.deepEqual(proxy.backendsReport().pools[0]!.backends.map((backend) => backend.address), [added.address]);
  } finally {
    await proxy.stop(2000);
    await old.close();
    await added.close();
  }
});
