// A real store member in this process, driven by the real etcdctl (Debian etcd-client) and by the
// etcd3 npm client, as users would drive it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import type { ServerConfig } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';

const run = promisify(execFile);
const ETCDCTL = '/usr/bin/etcdctl';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

let dataRoot: string;
before(() => {
  if (!existsSync(ETCDCTL)) {
    assert.fail(`${ETCDCTL} is missing: install the test dependencies with 'sudo bash scripts/install-test-deps.sh'`);
  }
  dataRoot = mkdtempSync(join(tmpdir(), 'concord-store-'));
});
after(() => rmSync(dataRoot, { recursive: true, force: true }));

function configFor(name: string, extra: Record<string, string> = {}): ServerConfig {
  return resolveServerConfig({}, settingsFromFlags({
    name, dataDir: join(dataRoot, name), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', ...extra,
  }));
}

async function etcdctl(server: StoreServer, ...args: string[]): Promise<string> {
  const { stdout } = await run(ETCDCTL, ['--endpoints', server.clientAddresses[0]!, '--command-timeout=5s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000,
  });
  return stdout;
}

async function etcdctlFails(server: StoreServer, ...args: string[]): Promise<string> {
  try {
    await etcdctl(server, ...args);
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? '');
  }
  assert.fail(`etcdctl ${args.join(' ')} should have failed`);
}

test('etcdctl put, get, txn, del and compact work against a single member, with etcd\'s revisions', async () => {
  const server = await StoreServer.start(configFor('m1'), { logger: quiet });
  try {
    assert.equal((await etcdctl(server, 'put', 'foo', 'bar')).trim(), 'OK');
    const raw = await etcdctl(server, 'get', 'foo', '-w', 'json');
    const got = JSON.parse(raw);
    assert.equal(got.header.revision, 2, 'the first write makes revision 2, as in etcd');
    assert.equal(Buffer.from(got.kvs[0].value, 'base64').toString(), 'bar');
    assert.equal(got.kvs[0].create_revision, 2);
    // etcdctl prints 64-bit ids as bare JSON numbers, which JSON.parse would round: read the text.
    assert.equal(BigInt(/"member_id":(\d+)/.exec(raw)![1]!), server.memberId, 'the header carries the 64-bit member id exactly');
    await etcdctl(server, 'put', 'foo', 'baz');
    assert.equal((await etcdctl(server, 'get', 'foo', '--rev', '2', '--print-value-only')).trim(), 'bar', 'reads in the past');
    assert.equal((await etcdctl(server, 'del', 'foo')).trim(), '1');
    await etcdctl(server, 'compact', '3');
    assert.match(await etcdctlFails(server, 'get', 'foo', '--rev', '2'), /required revision has been compacted/);
  } finally {
    await server.stop();
  }
});

test('acknowledged writes survive a restart from the data dir', async () => {
  const config = configFor('m2');
  const first = await StoreServer.start(config, { logger: quiet });
  for (let i = 0; i < 20; i++) await etcdctl(first, 'put', `k${i}`, `v${i}`);
  await first.stop();
  const second = await StoreServer.start(config, { logger: quiet });
  try {
    const keys = (await etcdctl(second, 'get', 'k', '--prefix', '--keys-only')).split('\n').filter(Boolean);
    assert.equal(keys.length, 20);
    const status = JSON.parse(await etcdctl(second, 'get', 'k0', '-w', 'json'));
    assert.equal(status.header.revision, 21, 'the revision continues where it was');
  } finally {
    await second.stop();
  }
});

test('with --snapshot-count, snapshots are taken as the store grows and a restart from the newest one loses nothing', async () => {
  const config = configFor('m2s', { snapshotCount: '40' });
  const logged: string[] = [];
  const first = await StoreServer.start(config, { logger: { ...quiet, info: (message: string) => logged.push(message) } });
  const client = new Etcd3({ hosts: first.clientAddresses[0]! });
  try {
    for (let i = 0; i < 150; i++) await client.put(`snap/${String(i).padStart(3, '0')}`).value(`v${i}-${'x'.repeat(2000)}`);
    await client.delete().key('snap/007');
  } finally {
    client.close();
    await first.stop();
  }
  const saved = logged.filter((line) => /^saved snapshot at index \d+: [\d.]+ MB, encoded in \d+ ms, written in \d+ ms$/.test(line));
  assert.ok(saved.length >= 2, `snapshots logged: ${saved.join(' | ')}`);
  assert.ok(readdirSync(join(config.dataDir, 'member', 'snap')).some((name) => name.endsWith('.snap')), 'a snapshot file on disk');
  const second = await StoreServer.start(config, { logger: quiet });
  const reader = new Etcd3({ hosts: second.clientAddresses[0]! });
  try {
    const values = await reader.getAll().prefix('snap/').strings();
    assert.equal(Object.keys(values).length, 149);
    assert.equal(values['snap/149'], `v149-${'x'.repeat(2000)}`);
    assert.equal(values['snap/007'], undefined, 'the delete after the last snapshot replays too');
  } finally {
    reader.close();
    await second.stop();
  }
});

test('a data dir from another cluster is refused with a clear error', async () => {
  const first = await StoreServer.start(configFor('m3'), { logger: quiet });
  await first.stop();
  await assert.rejects(
    StoreServer.start(configFor('m3', { initialClusterToken: 'another-cluster' }), { logger: quiet }),
    (error: Error & { code?: string }) => error.code === 'CONCORD_E_DATA_DIR_FOREIGN_CLUSTER',
  );
});

test('a request above --max-request-bytes gets etcd\'s "request is too large"', async () => {
  const server = await StoreServer.start(configFor('m4', { maxRequestBytes: '4096' }), { logger: quiet });
  try {
    assert.match(await etcdctlFails(server, 'put', 'big', 'x'.repeat(5000)), /request is too large/);
    assert.equal((await etcdctl(server, 'put', 'small', 'x'.repeat(100))).trim(), 'OK');
  } finally {
    await server.stop();
  }
});

test('the etcd3 npm client reads and writes through Concord', async () => {
  const server = await StoreServer.start(configFor('m5'), { logger: quiet });
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    await client.put('greeting').value('hello');
    assert.equal(await client.get('greeting').string(), 'hello');
    const all = await client.getAll().prefix('gree').strings();
    assert.deepEqual(all, { greeting: 'hello' });
    await client.delete().key('greeting');
    assert.equal(await client.get('greeting').string(), null);
  } finally {
    client.close();
    await server.stop();
  }
});

test('/metrics and /health are served on their own port, with the store\'s metrics', async () => {
  const server = await StoreServer.start(configFor('m6', { listenMetricsUrls: 'http://127.0.0.1:0' }), { logger: quiet });
  try {
    await etcdctl(server, 'put', 'a', '1');
    const base = `http://${server.metricsAddresses[0]}`;
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { health: 'true', reason: '' });
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['concord_server_has_leader 1', 'concord_server_is_leader 1', 'concord_server_proposals_committed_total',
      'concord_disk_wal_fsync_duration_seconds_bucket', 'concord_server_apply_lag_entries', 'concord_mvcc_db_total_size_bytes',
      'concord_server_proposals_pending', 'concord_server_term']) {
      assert.ok(text.includes(name), `metrics include ${name}`);
    }
    assert.match(text, /concord_server_proposals_committed_total [1-9]/);
    // Fsyncs on the loop's thread are a part of the fsyncs timed (when they happen depends on the disk).
    const onThread = Number(/^concord_disk_wal_fsyncs_on_thread_total (\d+)$/m.exec(text)?.[1]);
    const timed = Number(/^concord_disk_wal_fsync_duration_seconds_count (\d+)$/m.exec(text)?.[1]);
    assert.ok(Number.isInteger(onThread) && onThread <= timed && timed > 0, `${onThread} on-thread fsyncs of ${timed}`);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    await server.stop();
  }
});

test('--auto-compaction-mode periodic compacts history older than the retention, on its own', async () => {
  const retentionMs = 1_000;
  const server = await StoreServer.start(configFor('m7', { autoCompactionMode: 'periodic', autoCompactionRetention: '1s' }), { logger: quiet });
  try {
    await etcdctl(server, 'put', 'a', '1'); // revision 2
    await etcdctl(server, 'put', 'a', '2'); // revision 3
    // The policy compacts to the revision it saw one retention ago; allow ten retentions of slack.
    const deadline = Date.now() + 10 * retentionMs + 5_000;
    let compacted = false;
    while (!compacted && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await etcdctl(server, 'put', 'tick', String(Date.now()));
      compacted = server.member.appliedIndex() > 0 && /compacted/.test(await etcdctlFails(server, 'get', 'a', '--rev', '2').catch(() => ''));
    }
    assert.ok(compacted, 'revision 2 was compacted away within the bound');
    assert.equal((await etcdctl(server, 'get', 'a', '--print-value-only')).trim(), '2', 'the latest value is kept');
  } finally {
    await server.stop();
  }
});

test('bad auto-compaction flags are refused before the data dir is touched', async () => {
  await assert.rejects(StoreServer.start(configFor('m8', { autoCompactionMode: 'revision', autoCompactionRetention: '1h' }), { logger: quiet }),
    /revision retention must be a number of revisions/);
});

test('--quota-backend-bytes: a write past the quota fails with NOSPACE, raises the alarm, and deletes still work', async () => {
  const server = await StoreServer.start(configFor('m9', { quotaBackendBytes: '20000' }), { logger: quiet });
  try {
    let refusal = '';
    for (let i = 0; i < 100 && refusal === ''; i++) {
      try {
        await etcdctl(server, 'put', `fill/${i}`, 'x'.repeat(1000));
      } catch (error) {
        refusal = String((error as { stderr?: string }).stderr ?? '');
      }
    }
    assert.match(refusal, /database space exceeded/, 'the quota was reached within the bound');
    assert.match(await etcdctl(server, 'alarm', 'list'), /alarm:NOSPACE/);
    assert.match(await etcdctlFails(server, 'put', 'more', 'x'), /database space exceeded/, 'writes stay refused while the alarm is raised');
    assert.match(await etcdctl(server, 'del', 'fill/', '--prefix'), /^\d+/, 'deletes are still accepted');
    assert.ok((await etcdctl(server, 'get', 'fill/0', '--consistency=s')) !== undefined, 'reads are still served');
  } finally {
    await server.stop();
  }
});
