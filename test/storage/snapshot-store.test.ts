// Tests of the snapshot store: durable saves (temp file, fsync, rename, directory fsync), the
// newest intact snapshot wins, corrupt ones are skipped with a warning, temp files are ignored,
// and only the newest few are kept.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../src/consensus/types.ts';
import { SnapshotStore, encodeSnapshot, snapshotFileName } from '../../src/storage/snapshot-store.ts';
import type { SnapshotStoreOptions } from '../../src/storage/snapshot-store.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { PowerLossFileSystem } from './power-loss-file-system.ts';
import { storageError } from './fixtures.ts';

const SNAP_DIR = '/data/member/snap';

function snapshot(index: number, term: number, dataBytes = 100): Snapshot {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index + i * 13) & 0xff;
  return { metadata: { index, term, confState: { voters: [1n, 0xfedcba9876543210n], learners: [7n] } }, data };
}

function newStore(options: SnapshotStoreOptions = {}): { fs: PowerLossFileSystem; store: SnapshotStore } {
  const fs = new PowerLossFileSystem([SNAP_DIR]);
  return { fs, store: new SnapshotStore(fs, SNAP_DIR, options) };
}

describe('SnapshotStore', () => {
  test('a saved snapshot loads back exactly, from a file named <term>-<index>.snap', async () => {
    const { fs, store } = newStore();
    const path = await store.save(snapshot(42, 3));
    assert.equal(path, `${SNAP_DIR}/0000000000000003-000000000000002a.snap`);
    assert.equal(snapshotFileName(3, 42), '0000000000000003-000000000000002a.snap');
    const loaded = await store.loadNewest();
    assert.deepEqual(loaded, { snapshot: snapshot(42, 3), path, skipped: [], warnings: [] });
    // It was durable when save resolved.
    const survived = await new SnapshotStore(fs.crashedCopy(), SNAP_DIR).loadNewest();
    assert.deepEqual(survived.snapshot, snapshot(42, 3));
  });

  test('an empty store loads nothing', async () => {
    const { store } = newStore();
    assert.deepEqual(await store.loadNewest(), { snapshot: undefined, path: undefined, skipped: [], warnings: [] });
    assert.deepEqual(await new SnapshotStore(new PowerLossFileSystem(), '/nowhere').list(), []);
  });

  test('the newest is the highest index', async () => {
    const { store } = newStore();
    await store.save(snapshot(10, 5));
    await store.save(snapshot(30, 2));
    await store.save(snapshot(20, 9));
    assert.equal((await store.loadNewest()).snapshot?.metadata.index, 30);
  });

  test('a corrupt newest snapshot is skipped with a warning that names it', async () => {
    const { fs, store } = newStore();
    await store.save(snapshot(10, 1));
    const newest = await store.save(snapshot(20, 1));
    fs.corruptByte(newest, 60, 0x04);
    const loaded = await store.loadNewest();
    assert.equal(loaded.snapshot?.metadata.index, 10);
    assert.equal(loaded.skipped.length, 1);
    assert.equal(loaded.skipped[0]!.path, newest);
    assert.equal(loaded.warnings.length, 1);
    assert.match(loaded.warnings[0]!, new RegExp(`snapshot ${newest} is corrupt: checksum mismatch.*Skipped it and fell back to an older snapshot`));
  });

  test('a snapshot cut short or with a bad header is corrupt; all corrupt loads nothing', async () => {
    const { fs, store } = newStore();
    const path = await store.save(snapshot(10, 1));
    const handle = await fs.open(path);
    await handle.truncate(50);
    await handle.close();
    await assert.rejects(store.load({ path, index: 10, term: 1 }), storageError('CONCORD_E_SNAPSHOT_CORRUPT', /promises 148 payload bytes but the file holds 30/));
    fs.corruptByte(path, 0);
    await assert.rejects(store.load({ path, index: 10, term: 1 }), storageError('CONCORD_E_SNAPSHOT_CORRUPT', /magic/));
    const loaded = await store.loadNewest();
    assert.equal(loaded.snapshot, undefined);
    assert.equal(loaded.warnings.length, 1);
  });

  test('a snapshot whose content does not match its name is corrupt', async () => {
    const { fs, store } = newStore();
    const path = await store.save(snapshot(10, 1));
    const renamed = `${SNAP_DIR}/${snapshotFileName(1, 11)}`;
    await fs.rename(path, renamed);
    await assert.rejects(store.load({ path: renamed, index: 11, term: 1 }), storageError('CONCORD_E_SNAPSHOT_CORRUPT', /does not match its name/));
  });

  test('a snapshot in a newer format stops recovery instead of being skipped', async () => {
    const { fs, store } = newStore();
    const bytes = encodeSnapshot(snapshot(10, 1));
    bytes[4] = 9; // format version
    const handle = await fs.createExclusive(`${SNAP_DIR}/${snapshotFileName(1, 10)}`);
    await handle.write(bytes, 0);
    await handle.close();
    await assert.rejects(store.loadNewest(), storageError('CONCORD_E_DATA_DIR_NEWER_FORMAT', /written by a newer Concord; upgrade or point --data-dir elsewhere/));
  });

  test('temp files from an interrupted save are ignored and removed', async () => {
    const { fs, store } = newStore();
    await store.save(snapshot(10, 1));
    const temp = `${SNAP_DIR}/${snapshotFileName(1, 20)}.tmp`;
    const handle = await fs.createExclusive(temp);
    await handle.write(new Uint8Array([1, 2, 3]), 0);
    await handle.close();
    assert.equal((await store.loadNewest()).snapshot?.metadata.index, 10);
    assert.deepEqual((await store.list()).map((file) => file.index), [10]);
    assert.equal(await store.removeTempFiles(), 1);
    assert.deepEqual(fs.listFiles(), [`${SNAP_DIR}/${snapshotFileName(1, 10)}`]);
  });

  test('only the newest retainCount snapshots are kept', async () => {
    const { fs, store } = newStore({ retainCount: 3 });
    for (let index = 1; index <= 8; index++) await store.save(snapshot(index * 10, 1));
    assert.deepEqual(
      (await store.list()).map((file) => file.index),
      [80, 70, 60],
    );
    assert.equal(fs.listFiles().length, 3);
  });

  test('accept() passes over snapshots the caller cannot use', async () => {
    const { store } = newStore();
    await store.save(snapshot(10, 1));
    await store.save(snapshot(20, 1));
    const loaded = await store.loadNewest({ accept: (marker) => marker.index === 10 });
    assert.equal(loaded.snapshot?.metadata.index, 10);
    assert.match(loaded.skipped[0]!.reason, /no marker/);
    assert.deepEqual(loaded.warnings, []);
  });

  test('limits: a snapshot over maxSnapshotBytes is refused; retainCount must be positive', async () => {
    const { store } = newStore({ maxSnapshotBytes: 100 });
    await assert.rejects(store.save(snapshot(10, 1, 200)), storageError('CONCORD_E_SNAPSHOT_TOO_LARGE', /maxSnapshotBytes 100/));
    assert.throws(() => new SnapshotStore(new PowerLossFileSystem(), SNAP_DIR, { retainCount: 0 }), storageError('CONCORD_E_STORAGE_CONFIG_INVALID'));
  });

  test('a crash at any point of a save leaves the old or the new snapshot, never a corrupt one', async () => {
    const probe = newStore({ retainCount: 2 });
    await probe.store.save(snapshot(10, 1));
    await probe.store.save(snapshot(20, 1));
    const before = probe.fs.operations;
    await probe.store.save(snapshot(30, 2));
    const saveOperations = probe.fs.operations - before;
    let newSeen = 0;
    for (let crashAfter = 0; crashAfter <= saveOperations; crashAfter++) {
      for (const seed of [1, 2, 3]) {
        const { fs, store } = newStore({ retainCount: 2 });
        await store.save(snapshot(10, 1));
        await store.save(snapshot(20, 1));
        fs.crashAfterOperations(crashAfter);
        const saved = await store.save(snapshot(30, 2)).then(
          () => true,
          () => false,
        );
        fs.crash({ random: new SeededRandom(seed * 1000 + crashAfter) });
        const loaded = await new SnapshotStore(fs, SNAP_DIR).loadNewest();
        assert.deepEqual(loaded.warnings, [], `crash after ${crashAfter}`);
        const index = loaded.snapshot?.metadata.index;
        assert.ok(index === 20 || index === 30, `crash after ${crashAfter}: loaded ${index}`);
        if (saved) assert.equal(index, 30, 'an acknowledged save survives');
        if (index === 30) newSeen++;
      }
    }
    assert.ok(newSeen > 0);
  });
});
