// What an operator sees when `concord server` starts on a damaged data dir: a torn tail is cut and
// every acknowledged key is served; real damage stops the process with exit code 2 and one line
// naming the code, the file and the offset, never a stack trace. (The wide fuzzing of the same
// files is test/storage/data-dir-fuzz.test.ts; this checks the whole path through the CLI.)

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { NodeFileSystem } from '../../src/storage/file-system.ts';
import { SnapshotStore } from '../../src/storage/snapshot-store.ts';
import { decodeFrame } from '../../src/storage/wal-record.ts';

const ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
/** Bound on one `concord server` run that must refuse to start. */
const CLI_TIMEOUT_MS = 30_000;
const QUIET = { info: () => {}, warn: () => {}, error: () => {} };
const KEYS = 20;
/** The identity follows from these flags, so every start below finds the same member. */
const FLAGS = { name: 'damaged', initialCluster: 'damaged=http://127.0.0.1:2380', initialClusterToken: 'damaged-dir' };

let root: string;
let base: string;

function startInProcess(dataDir: string): Promise<StoreServer> {
  return StoreServer.start(resolveServerConfig({}, settingsFromFlags({
    ...FLAGS, dataDir, listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', initialAdvertisePeerUrls: 'http://127.0.0.1:2380',
  })), { logger: QUIET });
}

/** Runs `concord server` on the data dir; it must exit by itself (it refuses to start). */
function runCli(dataDir: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ENTRY, 'server', '--name', FLAGS.name, '--data-dir', dataDir, '--initial-cluster', FLAGS.initialCluster,
      '--initial-cluster-token', FLAGS.initialClusterToken, '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--listen-client-urls', 'http://127.0.0.1:0', '--listen-peer-urls', 'http://127.0.0.1:0'], { timeout: CLI_TIMEOUT_MS }, (error, _stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
    });
  });
}

function copyOfBase(name: string): { dataDir: string; segment: string; snapshot: string } {
  const dataDir = join(root, name);
  cpSync(base, dataDir, { recursive: true });
  const walDir = join(dataDir, 'member', 'wal');
  const snapDir = join(dataDir, 'member', 'snap');
  return { dataDir, segment: join(walDir, readdirSync(walDir).sort().pop()!), snapshot: join(snapDir, readdirSync(snapDir).sort()[0]!) };
}

function recordOffsets(path: string): number[] {
  const bytes = new Uint8Array(readFileSync(path));
  const offsets: number[] = [];
  for (let offset = 0; offset < bytes.byteLength;) {
    const frame = decodeFrame(bytes, offset);
    if (frame.kind !== 'valid') break;
    offsets.push(offset);
    offset = frame.nextOffset;
  }
  return offsets;
}

function assertRefusedInOneLine(outcome: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(outcome.code, 2, `exit code 2 (a known error), stderr: ${outcome.stderr}`);
  const lines = outcome.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, no stack trace: ${outcome.stderr}`);
  assert.match(lines[0]!, pattern);
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'concord-damaged-'));
  base = join(root, 'base');
  const server = await startInProcess(base);
  const client = new Etcd3({ hosts: server.clientAddresses[0]! });
  try {
    for (let i = 0; i < KEYS; i++) await client.put(`key-${i}`).value(`value-${i}`);
  } finally {
    client.close();
    await server.stop();
  }
});

after(() => rmSync(root, { recursive: true, force: true }));

describe('concord server on a damaged data dir', () => {
  test('a torn write at the end of the WAL is cut off, and every acknowledged key is served', async () => {
    const { dataDir, segment } = copyOfBase('torn');
    // Half a record header after the last record, in the segment's preallocated zeros, as a crash
    // in the middle of a write leaves it.
    const bytes = readFileSync(segment);
    const lastRecord = decodeFrame(new Uint8Array(bytes), recordOffsets(segment).pop()!);
    assert.equal(lastRecord.kind, 'valid');
    if (lastRecord.kind === 'valid') bytes.set([0x12, 0x34, 0x56, 0x78, 0x20], lastRecord.nextOffset);
    writeFileSync(segment, bytes);
    const server = await startInProcess(dataDir);
    const client = new Etcd3({ hosts: server.clientAddresses[0]! });
    try {
      for (let i = 0; i < KEYS; i++) assert.equal(await client.get(`key-${i}`).string(), `value-${i}`);
    } finally {
      client.close();
      await server.stop();
    }
  });

  test('a flipped byte in the middle of the WAL: exit 2, one line naming the segment and the offset', async () => {
    const { dataDir, segment } = copyOfBase('flipped');
    const offsets = recordOffsets(segment);
    const victim = offsets[Math.floor(offsets.length / 2)]!;
    const bytes = readFileSync(segment);
    bytes[victim + 10]! ^= 0x40;
    writeFileSync(segment, bytes);
    const outcome = await runCli(dataDir);
    assertRefusedInOneLine(outcome, new RegExp(`^concord server: CONCORD_E_WAL_CORRUPT: WAL segment ${segment} is corrupt at byte offset ${victim}: checksum mismatch`));
  });

  test('a WAL segment replaced by random bytes: exit 2, one line', async () => {
    const { dataDir, segment } = copyOfBase('random');
    writeFileSync(segment, Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff));
    assertRefusedInOneLine(await runCli(dataDir), new RegExp(`^concord server: CONCORD_E_WAL_CORRUPT: WAL segment ${segment} is corrupt at byte offset 0`));
  });

  test('the only snapshot damaged: exit 2, one line naming it (no Raft crash)', async () => {
    const { dataDir, snapshot } = copyOfBase('snapshot');
    const bytes = readFileSync(snapshot);
    bytes[bytes.length - 1]! ^= 0x01;
    writeFileSync(snapshot, bytes);
    assertRefusedInOneLine(await runCli(dataDir), new RegExp(`^concord server: CONCORD_E_WAL_MISSING_ENTRIES: .*\\(unreadable: ${snapshot}\\)$`));
  });

  test('a snapshot that passes its checksum but holds garbage: exit 2, one line naming the file', async () => {
    const { dataDir, snapshot } = copyOfBase('garbage-snapshot');
    const store = new SnapshotStore(new NodeFileSystem(), join(dataDir, 'member', 'snap'));
    const { snapshot: loaded } = await store.loadNewest();
    rmSync(snapshot);
    await store.save({ metadata: loaded!.metadata, data: Uint8Array.from({ length: 300 }, (_, i) => (i * 31 + 7) & 0xff) });
    assertRefusedInOneLine(await runCli(dataDir), new RegExp(`^concord server: .*\\(snapshot file ${snapshot}; move it aside`));
  });
});
