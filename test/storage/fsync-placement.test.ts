// Where the WAL waits for an fsync: the placement rule alone, then the WAL following it on the
// power-loss file system (an fsync on the loop's thread must be as durable as one in the pool).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_FSYNCS_BEFORE_ON_THREAD, FsyncPlacement } from '../../src/storage/fsync-placement.ts';
import { Wal } from '../../src/storage/wal.ts';
import type { WalOptions } from '../../src/storage/wal.ts';
import { IDENTITY, WAL_DIR, entry, hardState, newFileSystem, quietOptions, storageError } from './fixtures.ts';

describe('FsyncPlacement', () => {
  test('a small batch waits on the loop thread only after a run of fast fsyncs', () => {
    const placement = new FsyncPlacement({ onThreadFsyncMaxEntries: 4, onThreadFsyncMaxMs: 2 });
    for (let i = 0; i < FAST_FSYNCS_BEFORE_ON_THREAD; i++) {
      assert.equal(placement.onThisThread(1), false, `after ${i} fast fsyncs`);
      placement.observe(0.3);
    }
    assert.equal(placement.onThisThread(1), true);
    assert.equal(placement.onThisThread(4), true, 'up to onThreadFsyncMaxEntries');
    assert.equal(placement.onThisThread(5), false, 'a larger batch stays in the pool');
  });

  test('one slow fsync sends the next run of fsyncs to the pool', () => {
    const placement = new FsyncPlacement({ onThreadFsyncMaxEntries: 4, onThreadFsyncMaxMs: 2 });
    for (let i = 0; i < FAST_FSYNCS_BEFORE_ON_THREAD; i++) placement.observe(2);
    assert.equal(placement.onThisThread(1), true, 'exactly onThreadFsyncMaxMs is fast');
    placement.observe(2.5);
    for (let i = 0; i < FAST_FSYNCS_BEFORE_ON_THREAD; i++) {
      assert.equal(placement.onThisThread(1), false, `${i} fast fsyncs after the slow one`);
      placement.observe(0.3);
    }
    assert.equal(placement.onThisThread(1), true);
  });

  test('onThreadFsyncMaxEntries 0 never waits on the loop thread', () => {
    const placement = new FsyncPlacement({ onThreadFsyncMaxEntries: 0, onThreadFsyncMaxMs: 2 });
    for (let i = 0; i < 2 * FAST_FSYNCS_BEFORE_ON_THREAD; i++) placement.observe(0.1);
    assert.equal(placement.onThisThread(1), false);
  });
});

/** A clock in which every fsync the WAL times takes `fsyncMs` (the WAL reads it before and after). */
function fsyncClock() {
  let nowMs = 0;
  let reads = 0;
  const clock = {
    fsyncMs: 0.2,
    clockMs: () => {
      // Odd reads end an fsync.
      if (reads++ % 2 === 1) nowMs += clock.fsyncMs;
      return nowMs;
    },
  };
  return clock;
}

async function walWithClock(options: WalOptions = {}) {
  const fs = newFileSystem();
  const clock = fsyncClock();
  const wal = await Wal.create(fs, WAL_DIR, IDENTITY, quietOptions({ clockMs: clock.clockMs, ...options }));
  return { fs, wal, clock };
}

describe('Wal fsync placement', () => {
  test('single saves after a run of fast fsyncs wait on the loop thread; what they acknowledged survives a power loss', async () => {
    const { fs, wal } = await walWithClock();
    const saves = FAST_FSYNCS_BEFORE_ON_THREAD + 10;
    for (let i = 1; i <= saves; i++) {
      await wal.save(hardState(1, i - 1), [entry(i, 1)]);
      const { state } = await Wal.open(fs.crashedCopy(), WAL_DIR, quietOptions({ expected: IDENTITY }));
      assert.equal(state.entries.length, i, `save ${i} was acknowledged (${i > FAST_FSYNCS_BEFORE_ON_THREAD ? 'loop thread' : 'pool'}) but lost`);
    }
    assert.equal(wal.stats.fsyncsOnThisThread, saves - FAST_FSYNCS_BEFORE_ON_THREAD);
    assert.equal(wal.stats.fsyncDurationsMs.count, wal.stats.fsyncs, 'both kinds are timed');
    await wal.close();
  });

  test('a batch of more than onThreadFsyncMaxEntries entries goes to the pool', async () => {
    const { wal } = await walWithClock({ onThreadFsyncMaxEntries: 2 });
    for (let i = 1; i <= FAST_FSYNCS_BEFORE_ON_THREAD; i++) await wal.save(undefined, [entry(i, 1)]);
    // Three saves in one turn form one batch of three entries.
    const next = FAST_FSYNCS_BEFORE_ON_THREAD + 1;
    await Promise.all([0, 1, 2].map((k) => wal.save(undefined, [entry(next + k, 1)])));
    assert.equal(wal.stats.fsyncsOnThisThread, 0);
    await wal.save(undefined, [entry(next + 3, 1)]);
    assert.equal(wal.stats.fsyncsOnThisThread, 1, 'a batch of one entry does');
    await wal.close();
  });

  test('entries are counted, not records: many entries in one record go to the pool', async () => {
    const { wal } = await walWithClock({ onThreadFsyncMaxEntries: 2 });
    for (let i = 1; i <= FAST_FSYNCS_BEFORE_ON_THREAD; i++) await wal.save(undefined, [entry(i, 1)]);
    // One save of three small entries: one WAL record (a record holds up to maxRecordBytes), three writes.
    const next = FAST_FSYNCS_BEFORE_ON_THREAD + 1;
    await wal.save(undefined, [entry(next, 1), entry(next + 1, 1), entry(next + 2, 1)]);
    assert.equal(wal.stats.fsyncsOnThisThread, 0);
    await wal.close();
  });

  test('slow fsyncs keep every batch in the pool', async () => {
    const { wal, clock } = await walWithClock();
    clock.fsyncMs = 5;
    for (let i = 1; i <= 2 * FAST_FSYNCS_BEFORE_ON_THREAD; i++) await wal.save(undefined, [entry(i, 1)]);
    assert.equal(wal.stats.fsyncsOnThisThread, 0);
    await wal.close();
  });

  test('a failed fsync on the loop thread fails the save and turns the WAL read-only, as in the pool', async () => {
    const { fs, wal } = await walWithClock();
    for (let i = 1; i <= FAST_FSYNCS_BEFORE_ON_THREAD; i++) await wal.save(undefined, [entry(i, 1)]);
    fs.injectFault({ code: 'EIO', kinds: ['sync'], times: 1 });
    await assert.rejects(wal.save(undefined, [entry(FAST_FSYNCS_BEFORE_ON_THREAD + 1, 1)]), storageError('CONCORD_E_IO'));
    assert.equal(wal.stats.fsyncsOnThisThread, 1, 'the failed fsync was on the loop thread');
    await assert.rejects(wal.save(undefined, [entry(FAST_FSYNCS_BEFORE_ON_THREAD + 2, 1)]), storageError('CONCORD_E_IO', /read-only/));
    await wal.close();
  });

  test('onThreadFsyncMaxEntries and onThreadFsyncMaxMs are checked', async () => {
    for (const options of [{ onThreadFsyncMaxEntries: -1 }, { onThreadFsyncMaxEntries: 1.5 }, { onThreadFsyncMaxMs: 0 }, { onThreadFsyncMaxMs: Number.NaN }]) {
      await assert.rejects(Wal.create(newFileSystem(), WAL_DIR, IDENTITY, quietOptions(options)), storageError('CONCORD_E_STORAGE_CONFIG_INVALID', /onThreadFsync/), JSON.stringify(options));
    }
  });
});
