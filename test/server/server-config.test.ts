import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseBytes, resolveServerConfig, settingsFromFile, settingsFromFlags } from '../../src/server/server-config.ts';

test('defaults match etcd: client 2379, peer 2380, heartbeat 100 ms, election 1000 ms, one-member cluster', () => {
  const config = resolveServerConfig({}, {});
  assert.equal(config.name, 'default');
  assert.equal(config.dataDir, 'default.concord');
  assert.equal(config.listenClientUrls[0]!.href, 'http://127.0.0.1:2379/');
  assert.equal(config.advertiseClientUrls[0]!.href, 'http://127.0.0.1:2379/', 'advertise defaults to listen');
  assert.equal(config.heartbeatIntervalMs, 100);
  assert.equal(config.electionTimeoutMs, 1000);
  assert.deepEqual([...config.initialCluster.keys()], ['default']);
  assert.equal(config.maxTxnOps, 128);
  assert.equal(config.maxRequestBytes, 1.5 * 1024 * 1024);
});

test("etcd's flag names are accepted and parsed", () => {
  const flags = settingsFromFlags({
    name: 'm1', dataDir: '/tmp/m1', listenClientUrls: 'http://127.0.0.1:12379,http://127.0.0.2:12379',
    initialCluster: 'm1=http://127.0.0.1:12380,m2=http://127.0.0.1:22380', listenPeerUrls: 'http://127.0.0.1:12380',
    initialClusterState: 'existing', heartbeatInterval: undefined, heartbeatIntervalMs: '50', electionTimeoutMs: '500',
    quotaBackendBytes: '8GiB',
  });
  const config = resolveServerConfig({}, flags);
  assert.equal(config.listenClientUrls.length, 2);
  assert.equal(config.initialCluster.size, 2);
  assert.equal(config.initialClusterState, 'existing');
  assert.equal(config.heartbeatIntervalMs, 50);
  assert.equal(config.quotaBackendBytes, 8 * 1024 ** 3);
});

test('the YAML server section is read, and flags override it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-config-'));
  try {
    const path = join(dir, 'concord.yaml');
    writeFileSync(path, 'server:\n  name: from-file\n  electionTimeoutMs: 2000\n  heartbeatIntervalMs: 200\n');
    const config = resolveServerConfig(settingsFromFile(path), settingsFromFlags({ electionTimeoutMs: '3000' }));
    assert.equal(config.name, 'from-file');
    assert.equal(config.electionTimeoutMs, 3000);
    assert.equal(config.heartbeatIntervalMs, 200);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input gets an error that names the flag and says what to do', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ listenClientUrls: 'localhost:2379' }, /--listen-client-urls: 'localhost:2379' must use http:\/\/ or https:\/\//],
    [{ listenClientUrls: 'not a url' }, /--listen-client-urls: 'not a url' is not a URL; write it as http:\/\/HOST:PORT/],
    [{ listenClientUrls: 'http://127.0.0.1' }, /needs an explicit port/],
    [{ initialClusterState: 'maybe' }, /--initial-cluster-state/],
    [{ heartbeatIntervalMs: 'fast' }, /--heartbeat-interval: 'fast' is not a whole number/],
    [{ heartbeatIntervalMs: '500', electionTimeoutMs: '1000' }, /at least 5 times --heartbeat-interval/],
    [{ electionTimeoutMs: '60000' }, /--election-timeout/],
    [{ name: 'm3', initialCluster: 'm1=http://127.0.0.1:2380' }, /no member named 'm3'/],
    [{ initialCluster: 'm1:http://127.0.0.1:2380' }, /should be NAME=PEER_URL/],
    [{ quotaBackendBytes: 'lots' }, /is not a size/],
  ];
  for (const [flags, expected] of cases) {
    assert.throws(() => resolveServerConfig({}, settingsFromFlags(flags)), (error: unknown) => {
      assert.ok(error instanceof ConfigError, `ConfigError for ${JSON.stringify(flags)}`);
      assert.match(error.message, expected);
      return true;
    });
  }
});

test('unknown keys in the config file are refused rather than silently ignored', () => {
  assert.throws(() => resolveServerConfig({ electionTimout: 5 } as never, {}), /Unrecognized key|electionTimout/);
});

test('byte sizes accept plain numbers and units', () => {
  assert.equal(parseBytes('1048576'), 1048576);
  assert.equal(parseBytes('1.5MiB'), 1572864);
  assert.equal(parseBytes('2GB'), 2e9);
  assert.throws(() => parseBytes('-1'), /is not a size/);
});

test('member and cluster ids are stable, non-zero 64-bit values that depend on the configuration', async () => {
  const { initialClusterIds } = await import('../../src/server/member-ids.ts');
  const cluster = new Map([
    ['m1', [new URL('http://127.0.0.1:2380')]],
    ['m2', [new URL('http://127.0.0.1:2381')]],
  ]);
  const a = initialClusterIds(cluster, 'token');
  const b = initialClusterIds(new Map([...cluster].reverse()), 'token');
  assert.equal(a.clusterId, b.clusterId, 'member order does not matter');
  assert.equal(a.members.get('m1'), b.members.get('m1'));
  assert.notEqual(a.members.get('m1'), a.members.get('m2'));
  assert.notEqual(initialClusterIds(cluster, 'other').clusterId, a.clusterId, 'the token separates clusters');
  for (const id of [a.clusterId, ...a.members.values()]) assert.ok(id > 0n && id < 1n << 64n);
});
