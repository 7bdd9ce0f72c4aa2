// Tests of the data dir: layout, the lock, and recovery of snapshot + hard state + entries, including
// a crash-point sweep over saves and snapshots, and fallback to an older snapshot when the newest
// one is corrupt.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry, Snapshot } from '../../src/consensus/types.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { DataDirLock, closeDataDir, dataDirLayout, persistSnapshot, recover, toMemoryStorage } from '../../src/storage/data-dir.ts';
import type { RecoverOptions, RecoveredDataDir } from '../../src/storage/data-dir.ts';
import { Wal } from '../../src/storage/wal.ts';
import { PowerLossFileSystem } from './power-loss-file-system.ts';
import { IDENTITY, entries, entry, hardState, indexTerms, storageError } from './fixtures.ts';

const DATA_DIR = '/data';

function options(extra: Partial<RecoverOptions> = {}): RecoverOptions {
  return {
    wal: { segmentSizeBytes: 600, onWarning: () => {} },
    snapshots: { retainCount: 3 },
    lock: { pid: 100, hostname: 'host-a', isProcessAlive: () => false, unreadableLockGraceMs: 0 },
    ...extra,
  };
}

/** A snapshot of a state machine that has applied entries up to `index`. */
function snapshotAt(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: { voters: [1n, 2n, 3n], learners: [] } }, data: new TextEncoder().encode(`applied ${index}`) };
}

describe('data dir', () => {
  test('a new data dir is laid out, locked, and given an empty WAL', async () => {
    const fs = new PowerLossFileSystem();
    const recovered = await recover(fs, DATA_DIR, IDENTITY, options());
    assert.equal(recovered.fresh, true);
    assert.deepEqual(recovered.entries, []);
    assert.equal(recovered.snapshot, undefined);
    const layout = dataDirLayout(DATA_DIR);
    assert.deepEqual(recovered.layout, layout);
    assert.deepEqual(await fs.readdir(layout.snapDir), []);
    assert.equal((await fs.readdir(layout.walDir)).length, 1);
    assert.match(new TextDecoder().decode(fs.fileBytes(layout.lockPath)), /"pid":100,"hostname":"host-a"/);
    await closeDataDir(recovered);
    assert.deepEqual(
      fs.listFiles().filter((path) => path.endsWith('.lock')),
      [],
    );
    // The layout and the WAL survive a power failure right after recover() returned.
    const again = await recover(fs.crashedCopy(), DATA_DIR, IDENTITY, options());
    assert.equal(again.fresh, false);
    await closeDataDir(again);
  });

  test('a second server cannot open a data dir in use', async () => {
    const fs = new PowerLossFileSystem();
    const first = await recover(fs, DATA_DIR, IDENTITY, options());
    const alive = options({ lock: { pid: 200, hostname: 'host-a', isProcessAlive: (pid) => pid === 100 } });
    await assert.rejects(recover(fs, DATA_DIR, IDENTITY, alive), storageError('CONCORD_E_DATA_DIR_LOCKED', /held by pid 100, which is running.*delete \/data\/concord.lock/));
    const elsewhere = options({ lock: { pid: 200, hostname: 'host-b', isProcessAlive: () => false } });
    await assert.rejects(recover(fs, DATA_DIR, IDENTITY, elsewhere), storageError('CONCORD_E_DATA_DIR_LOCKED', /on host host-a, which cannot be checked from host-b/));
    await closeDataDir(first);
    const second = await recover(fs, DATA_DIR, IDENTITY, alive);
    await closeDataDir(second);
  });

  test('a stale lock (its process is gone) or an empty one (a crash while creating it) is replaced', async () => {
    const fs = new PowerLossFileSystem([DATA_DIR]);
    const lockPath = dataDirLayout(DATA_DIR).lockPath;
    const stale = await DataDirLock.acquire(fs, lockPath, { pid: 100, hostname: 'host-a' });
    assert.ok(stale);
    const replaced = await DataDirLock.acquire(fs, lockPath, { pid: 200, hostname: 'host-a', isProcessAlive: () => false });
    assert.match(new TextDecoder().decode(fs.fileBytes(lockPath)), /"pid":200/);
    await replaced.release();
    await (await fs.createExclusive(lockPath)).close();
    const afterEmpty = await DataDirLock.acquire(fs, lockPath, { pid: 300, hostname: 'host-a', isProcessAlive: () => true, unreadableLockGraceMs: 0 });
    assert.match(new TextDecoder().decode(fs.fileBytes(lockPath)), /"pid":300/);
    await afterEmpty.release();
  });

  test('a data dir of another cluster is refused, and the lock released', async () => {
    const fs = new PowerLossFileSystem();
    await closeDataDir(await recover(fs, DATA_DIR, IDENTITY, options()));
    await assert.rejects(recover(fs, DATA_DIR, { ...IDENTITY, clusterId: 5n }, options()), storageError('CONCORD_E_DATA_DIR_FOREIGN_CLUSTER'));
    await closeDataDir(await recover(fs, DATA_DIR, IDENTITY, options()));
  });

  test('snapshots without a WAL are refused rather than mistaken for a new member', async () => {
    const fs = new PowerLossFileSystem();
    const recovered = await recover(fs, DATA_DIR, IDENTITY, options());
    await recovered.snapshots.save(snapshotAt(5, 1));
    await closeDataDir(recovered);
    for (const path of fs.listFiles().filter((p) => p.endsWith('.wal'))) await fs.unlink(path);
    await assert.rejects(recover(fs, DATA_DIR, IDENTITY, options()), storageError('CONCORD_E_WAL_NOT_FOUND', /holds 1 snapshots but/));
  });

  test('recovery returns the snapshot, the hard state and the entries after it; MemoryStorage is rebuilt', async () => {
    const fs = new PowerLossFileSystem();
    const recovered = await recover(fs, DATA_DIR, IDENTITY, options());
    await recovered.wal.save(hardState(2, 10, 3n), entries(1, 12, 2, 30));
    await persistSnapshot(recovered, snapshotAt(10, 2));
    await recovered.wal.save(hardState(2, 14, 3n), entries(13, 15, 2, 30));
    await closeDataDir(recovered);
    const again = await recover(fs.crashedCopy(), DATA_DIR, IDENTITY, options());
    assert.deepEqual(again.snapshot, snapshotAt(10, 2));
    assert.deepEqual(again.hardState, hardState(2, 14, 3n));
    assert.deepEqual(again.entries, entries(11, 15, 2, 30));
    assert.deepEqual(again.warnings, []);
    const storage = toMemoryStorage(again);
    assert.deepEqual([storage.firstIndex(), storage.lastIndex(), storage.term(10)], [11, 15, 2]);
    assert.deepEqual(storage.initialState().confState, { voters: [1n, 2n, 3n], learners: [] });
    assert.deepEqual(storage.initialState().hardState, hardState(2, 14, 3n));
    await closeDataDir(again);
  });

  test('a corrupt newest snapshot: recovery falls back to the previous one and replays the WAL, with a warning', async () => {
    const fs = new PowerLossFileSystem();
    const recovered = await recover(fs, DATA_DIR, IDENTITY, options());
    let index = 0;
    for (let round = 1; round <= 4; round++) {
      for (let i = 0; i < 8; i++) {
        index++;
        await recovered.wal.save(hardState(1, index), [entry(index, 1, 40)]);
      }
      await persistSnapshot(recovered, snapshotAt(index - 2, 1));
    }
    assert.ok(recovered.wal.stats.segmentsReleased > 0, 'old segments were released');
    await closeDataDir(recovered);
    const newest = (await recovered.snapshots.list())[0]!;
    fs.corruptByte(newest.path, 30);
    const again = await recover(fs, DATA_DIR, IDENTITY, options());
    assert.deepEqual(again.snapshot?.metadata.index, 22);
    assert.deepEqual(indexTerms(again.entries).map(([i]) => i), [23, 24, 25, 26, 27, 28, 29, 30, 31, 32]);
    assert.equal(again.warnings.length, 1);
    assert.match(again.warnings[0]!, /snapshot .*0000000000000001-000000000000001e\.snap is corrupt/);
    await closeDataDir(again);
  });

  test('a snapshot saved just before a crash, without its WAL marker, is passed over', async () => {
    const fs = new PowerLossFileSystem();
    const recovered = await recover(fs, DATA_DIR, IDENTITY, options());
    await recovered.wal.save(hardState(1, 6), entries(1, 8, 1));
    await persistSnapshot(recovered, snapshotAt(4, 1));
    await recovered.snapshots.save(snapshotAt(6, 1)); // the crash comes before saveSnapshotMarker
    await closeDataDir(recovered);
    const again = await recover(fs.crashedCopy(), DATA_DIR, IDENTITY, options());
    assert.equal(again.snapshot?.metadata.index, 4);
    assert.deepEqual(indexTerms(again.entries), indexTerms(entries(5, 8, 1)));
    assert.match(again.skippedSnapshots[0]?.reason ?? '', /no marker/);
    assert.deepEqual(again.warnings, []);
    await closeDataDir(again);
  });
});

interface DataDirRun {
  /** Entries whose save was acknowledged, by index (later saves overwrite). */
  acknowledged: Map<number, Entry>;
  operations: number;
}

async function dataDirWorkload(fs: PowerLossFileSystem, seed: number): Promise<DataDirRun> {
  const random = new SeededRandom(seed);
  const run: DataDirRun = { acknowledged: new Map(), operations: 0 };
  let recovered: RecoveredDataDir | undefined;
  try {
    recovered = await recover(fs, DATA_DIR, IDENTITY, options());
    let index = 0;
    const rounds = 15 + random.nextInt(15);
    for (let round = 0; round < rounds; round++) {
      if (random.nextFloat() < 0.2 && index > 2) {
        await persistSnapshot(recovered, snapshotAt(index - random.nextInt(2), 1));
        continue;
      }
      const batch = entries(index + 1, index + 1 + random.nextInt(3), 1, random.nextInt(80));
      await recovered.wal.save(hardState(1, index), batch);
      for (const e of batch) run.acknowledged.set(e.index, e);
      index = batch[batch.length - 1]!.index;
    }
    await closeDataDir(recovered);
  } catch {
    // The power failed.
  }
  run.operations = fs.operations;
  return run;
}

test('data dir crash-point sweep: snapshots and releases never lose an acknowledged entry, even when the newest snapshot is corrupt', async (t) => {
  let crashPoints = 0;
  let withSnapshot = 0;
  let fellBack = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const full = await dataDirWorkload(new PowerLossFileSystem(), seed);
    const chooser = new SeededRandom(seed * 31);
    for (let point = 0; point < 5; point++) {
      const fs = new PowerLossFileSystem();
      fs.crashAfterOperations(chooser.nextInt(full.operations));
      const run = await dataDirWorkload(fs, seed);
      fs.crash({ random: chooser.fork() });
      // Bit rot on top of the crash, sometimes: the newest snapshot no longer reads back.
      const rot = point % 2 === 1;
      if (rot) {
        const snaps = fs.listFiles().filter((path) => path.endsWith('.snap'));
        const newest = snaps[snaps.length - 1];
        if (snaps.length >= 2 && newest) fs.corruptByte(newest, 25);
      }
      let recovered: RecoveredDataDir;
      try {
        recovered = await recover(fs, DATA_DIR, IDENTITY, options());
      } catch (error) {
        assert.fail(`seed ${seed} point ${point}: recovery failed: ${String(error)}`);
      }
      crashPoints++;
      const snapshotIndex = recovered.snapshot?.metadata.index ?? 0;
      if (snapshotIndex > 0) withSnapshot++;
      if (recovered.warnings.some((w) => /is corrupt/.test(w))) fellBack++;
      if (recovered.snapshot) assert.deepEqual(recovered.snapshot, snapshotAt(snapshotIndex, 1));
      const storage = toMemoryStorage(recovered);
      for (const [index, expected] of run.acknowledged) {
        if (index <= snapshotIndex) continue; // covered by the snapshot
        assert.ok(index <= storage.lastIndex(), `seed ${seed} point ${point}: acknowledged entry ${index} lost (last ${storage.lastIndex()})`);
        assert.deepEqual(storage.entries(index, index + 1, Infinity), [expected]);
      }
      await closeDataDir(recovered);
    }
  }
  t.diagnostic(`data dir sweep: ${crashPoints} crash points, ${withSnapshot} recovered from a snapshot, ${fellBack} fell back past a corrupt one`);
  assert.ok(withSnapshot > crashPoints / 3);
  assert.ok(fellBack > 20);
});

test('Wal.exists tells a new member from a restarting one', async () => {
  const fs = new PowerLossFileSystem();
  assert.equal(await Wal.exists(fs, dataDirLayout(DATA_DIR).walDir), false);
  await closeDataDir(await recover(fs, DATA_DIR, IDENTITY, options()));
  assert.equal(await Wal.exists(fs, dataDirLayout(DATA_DIR).walDir), true);
});
