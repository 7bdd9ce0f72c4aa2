// `etcdctl snapshot save` from a running member, then `concord snapshot restore` (through the CLI
// entry point, in a child process) into a new data dir, then `concord server` on that data dir: the
// keys are there with the same revisions, under a new cluster identity.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { encodeSnapshotFileBody, sha256 } from '../../src/api/etcd/maintenance-service.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { ETCDCTL_BINARY, parseJsonExact, runEtcdctl } from '../compat/etcdctl.ts';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const run = promisify(execFile);
const ENTRY = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/entry.ts');
/** Bound on one `concord snapshot restore` run. */
const CLI_TIMEOUT_MS = 20_000;

let dataRoot: string;
before(() => {
  assert.ok(existsSync(ETCDCTL_BINARY), `${ETCDCTL_BINARY} is missing: install the test dependencies with 'sudo bash scripts/install-test-deps.sh'`);
  dataRoot = mkdtempSync(join(tmpdir(), 'concord-restore-'));
});
after(() => rmSync(dataRoot, { recursive: true, force: true }));

function flags(name: string, dataDir: string, token: string): Record<string, string> {
  return { name, dataDir, initialCluster: `${name}=http://127.0.0.1:2380`, initialClusterToken: token };
}

async function startMember(settings: Record<string, string>): Promise<StoreServer> {
  return StoreServer.start(resolveServerConfig({}, settingsFromFlags({ ...settings, listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', initialAdvertisePeerUrls: 'http://127.0.0.1:2380' })), { logger: quiet });
}

async function etcdctl(server: StoreServer, ...args: string[]): Promise<string> {
  const outcome = await runEtcdctl({ args, endpoint: server.clientAddresses[0]!, cwd: dataRoot });
  assert.equal(outcome.exitCode, 0, `etcdctl ${args.join(' ')} failed: ${outcome.stderr}`);
  return outcome.stdout;
}

/**
 * Runs `concord ...` as a user would, in a child process (the CLI entry point, run by this Node):
 * capturing this process's stdout would also capture the test runner's report.
 */
async function concord(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ENTRY, ...args], { timeout: CLI_TIMEOUT_MS });
    return { exitCode: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { exitCode: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(error) };
  }
}

function restoreFlags(settings: Record<string, string>): string[] {
  return ['--name', settings.name!, '--data-dir', settings.dataDir!, '--initial-cluster', settings.initialCluster!, '--initial-cluster-token', settings.initialClusterToken!];
}

type Range = { header: { revision: number }; kvs: { key: string; value: string; create_revision: number; mod_revision: number; version: number }[] };

test('a saved snapshot restores into a new data dir that serves the same keys at the same revisions', async () => {
  const source = flags('origin', join(dataRoot, 'origin'), 'first-cluster');
  const original = await startMember(source);
  let before: Range;
  let hashBefore: number;
  try {
    for (let i = 0; i < 10; i++) await etcdctl(original, 'put', `k/${i}`, `v${i}`);
    await etcdctl(original, 'put', 'k/3', 'changed');
    await etcdctl(original, 'del', 'k/7');
    before = JSON.parse(await etcdctl(original, 'get', 'k/', '--prefix', '-w', 'json')) as Range;
    hashBefore = (parseJsonExact(await etcdctl(original, 'endpoint', 'hashkv', '-w', 'json')) as { HashKV: { hash: number } }[])[0]!.HashKV.hash;
    assert.match(await etcdctl(original, 'snapshot', 'save', 'backup.db'), /Snapshot saved at backup\.db/);
  } finally {
    await original.stop();
  }

  const target = flags('restored', join(dataRoot, 'restored'), 'second-cluster');
  const restored = await concord('snapshot', 'restore', join(dataRoot, 'backup.db'), ...restoreFlags(target));
  assert.equal(restored.exitCode, 0, restored.stderr);
  assert.match(restored.stdout, /restored .*backup\.db into .*restored: revision 13, 9 keys; member restored \([0-9a-f]+\) of cluster [0-9a-f]+/);
  assert.deepEqual(readdirSync(dataRoot).filter((name) => name.includes('restoring')), [], 'no staging dir is left behind');

  const server = await startMember(target);
  try {
    const after = JSON.parse(await etcdctl(server, 'get', 'k/', '--prefix', '-w', 'json')) as Range;
    assert.deepEqual(after.kvs, before.kvs, 'same keys, values, create and mod revisions, versions');
    assert.equal(after.header.revision, before.header.revision);
    const hashAfter = (parseJsonExact(await etcdctl(server, 'endpoint', 'hashkv', '-w', 'json')) as { HashKV: { hash: number } }[])[0]!.HashKV.hash;
    assert.equal(hashAfter, hashBefore, 'the same history');
    const put = JSON.parse(await etcdctl(server, 'put', 'k/new', 'x', '-w', 'json')) as { header: { revision: number; cluster_id: bigint } };
    assert.equal(put.header.revision, before.header.revision + 1, 'the revision continues where the snapshot was');
    assert.notEqual(server.clusterId, original.clusterId, 'a fresh cluster identity from the restore flags');
  } finally {
    await server.stop();
  }
  const restarted = await startMember(target);
  try {
    assert.equal((await etcdctl(restarted, 'get', 'k/new', '--print-value-only')).trim(), 'x', 'writes after the restore survive a restart');
    assert.equal((await etcdctl(restarted, 'get', 'k/3', '--print-value-only')).trim(), 'changed');
  } finally {
    await restarted.stop();
  }
  // The same data dir refuses to start under other cluster flags, as any data dir does.
  await assert.rejects(startMember({ ...target, initialClusterToken: 'another' }), (error: Error & { code?: string }) => error.code === 'CONCORD_E_DATA_DIR_FOREIGN_CLUSTER');
});

test('restore refuses a data dir that is not empty, a damaged or truncated file and a file that is not Concord\'s', async () => {
  const body = encodeSnapshotFileBody(new KvStateMachine().snapshot());
  const file = join(dataRoot, 'small.db');
  writeFileSync(file, Buffer.concat([body, sha256(body)]));

  const occupied = join(dataRoot, 'occupied');
  mkdirSync(occupied);
  writeFileSync(join(occupied, 'something'), 'x');
  const refused = await concord('snapshot', 'restore', file, '--data-dir', occupied);
  assert.equal(refused.exitCode, 2);
  assert.match(refused.stderr, /--data-dir .*occupied exists and is not empty: restore creates a new data dir/);

  const damaged = Buffer.from(readFileSync(file));
  damaged[20] = damaged[20]! ^ 0xff;
  writeFileSync(join(dataRoot, 'damaged.db'), damaged);
  const badHash = await concord('snapshot', 'restore', join(dataRoot, 'damaged.db'), '--data-dir', join(dataRoot, 'never-1'));
  assert.equal(badHash.exitCode, 2);
  assert.match(badHash.stderr, /its SHA-256 is [0-9a-f]+ but its trailer says [0-9a-f]+: the file is damaged or truncated/);
  // Without the hash check, the key-value state's own checksum still catches the damage.
  const skipped = await concord('snapshot', 'restore', join(dataRoot, 'damaged.db'), '--data-dir', join(dataRoot, 'never-2'), '--skip-hash-check');
  assert.equal(skipped.exitCode, 2);
  assert.match(skipped.stderr, /the key-value state inside does not decode/);

  const foreign = Buffer.alloc(4096, 7);
  writeFileSync(join(dataRoot, 'bbolt.db'), Buffer.concat([foreign, sha256(foreign)]));
  const notOurs = await concord('snapshot', 'restore', join(dataRoot, 'bbolt.db'), '--data-dir', join(dataRoot, 'never-3'));
  assert.equal(notOurs.exitCode, 2);
  assert.match(notOurs.stderr, /not a snapshot saved from Concord .*restore it with `etcdctl snapshot restore`/);
  writeFileSync(join(dataRoot, 'truncated.db'), readFileSync(file).subarray(0, 500));
  const truncated = await concord('snapshot', 'restore', join(dataRoot, 'truncated.db'), '--data-dir', join(dataRoot, 'never-4'));
  assert.equal(truncated.exitCode, 2);
  assert.match(truncated.stderr, /it has no SHA-256 trailer: it is not a complete `etcdctl snapshot save` file/);
  for (const name of ['never-1', 'never-2', 'never-3', 'never-4']) assert.ok(!existsSync(join(dataRoot, name)), `${name} was not created`);
});
