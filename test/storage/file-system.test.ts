// Tests of the FileSystem implementations: NodeFileSystem on a real temporary directory (and the
// mapping of OS errors to coded StorageErrors), and the power-loss model that the durability tests
// rely on: if the model were too kind, the sweeps would prove nothing.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFileSystem, SYNC_WRITE_MAX_BYTES, storageErrorFromOs } from '../../src/storage/file-system.ts';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { closeDataDir, persistSnapshot, recover } from '../../src/storage/data-dir.ts';
import { PowerLossFileSystem, SimulatedCrashError } from './power-loss-file-system.ts';
import { IDENTITY, entries, hardState, storageError } from './fixtures.ts';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

describe('NodeFileSystem', () => {
  const root = mkdtempSync(join(tmpdir(), 'concord-storage-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const fs = new NodeFileSystem();

  test('an fsync on the calling thread of a closed file is a coded error naming the file', async () => {
    const path = join(root, 'closed-sync');
    const handle = await fs.createExclusive(path);
    await handle.close();
    assert.throws(() => handle.syncOnThisThread(), storageError('CONCORD_E_IO', /fsync .*closed-sync/));
  });

  test('supports every operation the WAL and snapshot store use', async () => {
    const dir = join(root, 'a', 'b');
    await fs.mkdirp(dir);
    await fs.mkdirp(dir); // idempotent
    const path = join(dir, 'file');
    const handle = await fs.createExclusive(path);
    await handle.write(bytes(1, 2, 3, 4), 0);
    await handle.write(bytes(9, 9), 6); // beyond the end: the gap reads as zeros
    await handle.sync();
    handle.syncOnThisThread();
    assert.equal(await handle.sizeBytes(), 8);
    assert.deepEqual(await handle.read(2, 4), bytes(3, 4, 0, 0));
    assert.deepEqual(await handle.read(6, 100), bytes(9, 9));
    await handle.truncate(3);
    await handle.close();
    assert.deepEqual(await fs.readFile(path), bytes(1, 2, 3));
    assert.equal(await fs.statSizeBytes(path), 3);
    await fs.rename(path, join(dir, 'renamed'));
    await fs.syncDir(dir);
    assert.deepEqual(await fs.readdir(dir), ['renamed']);
    const reopened = await fs.open(join(dir, 'renamed'));
    await reopened.write(bytes(7), 3);
    await reopened.close();
    assert.deepEqual(await fs.readFile(join(dir, 'renamed')), bytes(1, 2, 3, 7));
    await fs.unlink(join(dir, 'renamed'));
    assert.deepEqual(await fs.readdir(dir), []);
  });

  test('OS errors arrive as coded StorageErrors', async () => {
    const existing = join(root, 'exists');
    await (await fs.createExclusive(existing)).close();
    await assert.rejects(fs.createExclusive(existing), storageError('CONCORD_E_FILE_EXISTS'));
    await assert.rejects(fs.open(join(root, 'missing')), storageError('CONCORD_E_FILE_NOT_FOUND', /open .*missing failed \(ENOENT/));
    await assert.rejects(fs.readdir(join(root, 'missing')), storageError('CONCORD_E_FILE_NOT_FOUND'));
    await assert.rejects(fs.mkdirp(join(existing, 'below')), storageError('CONCORD_E_IO', /ENOTDIR/));
  });

  test('small writes (on the calling thread) and large ones (in the thread pool) land where asked; a failed one is coded', async () => {
    const path = join(root, 'sizes');
    const handle = await fs.createExclusive(path);
    const large = new Uint8Array(SYNC_WRITE_MAX_BYTES + 1).fill(2);
    const small = new Uint8Array(SYNC_WRITE_MAX_BYTES).fill(1);
    await handle.write(small, 0);
    await handle.write(large, small.byteLength);
    await handle.write(bytes(7, 7), 1); // a small write over the start
    const content = await fs.readFile(path);
    assert.equal(content.byteLength, small.byteLength + large.byteLength);
    assert.deepEqual(content.subarray(0, 4), bytes(1, 7, 7, 1));
    assert.equal(content[small.byteLength - 1], 1);
    assert.equal(content[small.byteLength], 2);
    assert.equal(content[content.byteLength - 1], 2);
    await handle.close();
    // The descriptor is closed now: both paths report the OS error as a StorageError naming the file.
    await assert.rejects(handle.write(bytes(1), 0), storageError('CONCORD_E_IO', /write .*sizes failed/));
    await assert.rejects(handle.write(large, 0), storageError('CONCORD_E_IO', /write .*sizes failed/));
  });

  test('ENOSPC, EDQUOT, EIO and permission errors map to codes with advice', () => {
    const os = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });
    assert.ok(storageError('CONCORD_E_NO_SPACE', /write \/d\/x failed .*disk is full: free space/)(storageErrorFromOs(os('ENOSPC'), 'write', '/d/x')));
    assert.ok(storageError('CONCORD_E_NO_SPACE')(storageErrorFromOs(os('EDQUOT'), 'write', '/d/x')));
    assert.ok(storageError('CONCORD_E_IO', /dmesg/)(storageErrorFromOs(os('EIO'), 'fsync', '/d/x')));
    assert.ok(storageError('CONCORD_E_ACCESS_DENIED')(storageErrorFromOs(os('EROFS'), 'create', '/d/x')));
    const error = storageErrorFromOs(os('ENOSPC'), 'write', '/d/x');
    assert.equal(error.osCode, 'ENOSPC');
    assert.equal(error.path, '/d/x');
  });

  test('a data dir on the real file system: recover, save, snapshot, recover again', async () => {
    const dataDir = join(root, 'data');
    const lock = { isProcessAlive: () => false };
    const first = await recover(fs, dataDir, IDENTITY, { lock, wal: { segmentSizeBytes: 256 } });
    await first.wal.save(hardState(1, 4), entries(1, 10, 1, 20));
    await persistSnapshot(first, { metadata: { index: 4, term: 1, confState: { voters: [1n], learners: [] } }, data: bytes(4) });
    await first.wal.save(hardState(1, 10), entries(11, 12, 1));
    await closeDataDir(first);
    const second = await recover(fs, dataDir, IDENTITY, { lock });
    assert.equal(second.snapshot?.metadata.index, 4);
    assert.deepEqual(
      second.entries.map((e) => e.index),
      [5, 6, 7, 8, 9, 10, 11, 12],
    );
    assert.ok(first.wal.stats.fsyncs > 0 && first.wal.stats.segmentsCreated > 1);
    await closeDataDir(second);
  });
});

describe('PowerLossFileSystem', () => {
  async function written(fs: PowerLossFileSystem, path: string, data: Uint8Array, options: { syncFile: boolean; syncDir: boolean }) {
    const handle = await fs.createExclusive(path);
    await handle.write(data, 0);
    if (options.syncFile) await handle.sync();
    await handle.close();
    if (options.syncDir) await fs.syncDir('/d');
  }

  test('written bytes are lost in a crash unless the file was fsynced', async () => {
    const fs = new PowerLossFileSystem(['/d']);
    await written(fs, '/d/f', bytes(1, 2), { syncFile: true, syncDir: true });
    const handle = await fs.open('/d/f');
    await handle.write(bytes(3, 4), 2);
    assert.deepEqual(fs.crashedCopy().fileBytes('/d/f'), bytes(1, 2));
    await handle.sync();
    assert.deepEqual(fs.crashedCopy().fileBytes('/d/f'), bytes(1, 2, 3, 4));
    await handle.truncate(1);
    assert.deepEqual(fs.crashedCopy().fileBytes('/d/f'), bytes(1, 2, 3, 4));
  });

  test('a new file is lost unless its directory was fsynced, even if the file was', async () => {
    const fs = new PowerLossFileSystem(['/d']);
    await written(fs, '/d/f', bytes(1), { syncFile: true, syncDir: false });
    assert.deepEqual(fs.crashedCopy().listFiles(), []);
    await fs.syncDir('/d');
    assert.deepEqual(fs.crashedCopy().listFiles(), ['/d/f']);
  });

  test('renames and unlinks are undone by a crash unless the directory was fsynced', async () => {
    const fs = new PowerLossFileSystem(['/d']);
    await written(fs, '/d/a', bytes(1), { syncFile: true, syncDir: true });
    await fs.rename('/d/a', '/d/b');
    assert.deepEqual(fs.crashedCopy().listFiles(), ['/d/a']);
    await fs.syncDir('/d');
    await fs.unlink('/d/b');
    assert.deepEqual(fs.crashedCopy().listFiles(), ['/d/b']);
    await fs.syncDir('/d');
    assert.deepEqual(fs.crashedCopy().listFiles(), []);
  });

  test('a torn crash keeps an in-order prefix of the unsynced writes, sometimes with garbage after it', async () => {
    let torn = 0;
    let garbage = 0;
    const data = new Uint8Array(2000).fill(0xaa);
    for (let seed = 1; seed <= 40; seed++) {
      const fs = new PowerLossFileSystem(['/d']);
      await written(fs, '/d/f', bytes(1, 2, 3), { syncFile: true, syncDir: true });
      const handle = await fs.open('/d/f');
      await handle.write(data, 3);
      const report = fs.crash({ random: new SeededRandom(seed), tornWriteProbability: 1 });
      const survived = fs.fileBytes('/d/f');
      assert.deepEqual(survived.subarray(0, 3), bytes(1, 2, 3), 'synced bytes always survive');
      const kept = survived.subarray(3);
      const prefix = kept.findIndex((b) => b !== 0xaa);
      if (prefix !== -1) {
        garbage++;
        assert.ok(kept.byteLength - prefix <= 512, 'garbage stays within the last sector');
      }
      if (report.tornFiles.length > 0) torn++;
      assert.ok(survived.byteLength <= 2003);
    }
    assert.equal(torn, 40);
    assert.ok(garbage > 0);
  });

  test('crashAfterOperations freezes the file system at the crash point', async () => {
    const fs = new PowerLossFileSystem(['/d']);
    fs.crashAfterOperations(2);
    await fs.readdir('/d');
    await fs.mkdirp('/d/e');
    await assert.rejects(fs.readdir('/d'), (error) => error instanceof SimulatedCrashError);
    await assert.rejects(fs.mkdirp('/d/f'), (error) => error instanceof SimulatedCrashError);
    assert.ok(fs.isFrozen);
    fs.crash();
    assert.deepEqual(await fs.readdir('/d'), []); // the mkdir was never made durable
    assert.deepEqual(fs.operationKinds, ['readdir', 'mkdirp', 'readdir', 'readdir']);
  });

  test('handles from before a crash stop working', async () => {
    const fs = new PowerLossFileSystem(['/d']);
    await written(fs, '/d/f', bytes(1), { syncFile: true, syncDir: true });
    const handle = await fs.open('/d/f');
    fs.crash();
    await assert.rejects(handle.write(bytes(2), 1), storageError('CONCORD_E_IO', /EBADF/));
  });

  test('injected faults: ENOSPC takes part of a write, then the disk stays full', async () => {
    const fs = new PowerLossFileSystem(['/d']);
    await written(fs, '/d/f', bytes(), { syncFile: true, syncDir: true });
    const handle = await fs.open('/d/f');
    fs.injectFault({ code: 'ENOSPC', kinds: ['write'] });
    await assert.rejects(handle.write(bytes(1, 2, 3, 4), 0), storageError('CONCORD_E_NO_SPACE'));
    assert.deepEqual(fs.fileBytes('/d/f'), bytes(1, 2));
    await assert.rejects(handle.write(bytes(5), 2), storageError('CONCORD_E_NO_SPACE'));
    await handle.sync(); // other kinds still work
    fs.clearFaults();
    await handle.write(bytes(5), 2);
    fs.injectFault({ code: 'EIO', afterOperations: 1, times: 1 });
    await handle.sync();
    await assert.rejects(handle.sync(), storageError('CONCORD_E_IO'));
    await handle.sync();
  });
});
