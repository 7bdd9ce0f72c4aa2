// `concord snapshot restore FILE` reads a file an operator hands it: a saved snapshot that may be
// damaged, cut short, padded, or not a snapshot at all. Generated damage to a real snapshot file
// (with and without --skip-hash-check, so damage also reaches the decoders behind the checksum)
// must restore the saved keys or fail with a coded SnapshotRestoreError, never anything else.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { encodeSnapshotFileBody, sha256 } from '../../src/api/etcd/maintenance-service.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { SnapshotRestoreError, restoreSnapshot } from '../../src/server/snapshot-restore.ts';
import { fuzzRuns } from '../support/fuzz-runs.ts';

const KEYS = 30;
let root: string;
let saved: Uint8Array;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'concord-restore-fuzz-'));
  const machine = new KvStateMachine();
  for (let i = 0; i < KEYS; i++) {
    machine.apply({ type: 'put', request: { key: new TextEncoder().encode(`key-${i}`), value: new TextEncoder().encode(`value-${i}`) } } as never, i + 1);
  }
  const body = encodeSnapshotFileBody(machine.snapshot());
  saved = new Uint8Array([...body, ...sha256(body)]);
});

after(() => rmSync(root, { recursive: true, force: true }));

type Damage = { kind: 'flip'; at: number; bit: number } | { kind: 'cut'; at: number } | { kind: 'append'; bytes: Uint8Array } | { kind: 'replace'; bytes: Uint8Array };

function damaged(damage: Damage): Uint8Array {
  switch (damage.kind) {
    case 'flip': {
      const copy = saved.slice();
      copy[damage.at % copy.byteLength]! ^= 1 << damage.bit;
      return copy;
    }
    case 'cut':
      return saved.subarray(0, damage.at % saved.byteLength);
    case 'append':
      return new Uint8Array([...saved, ...damage.bytes]);
    case 'replace':
      return damage.bytes;
  }
}

let runCount = 0;
async function restore(file: Uint8Array, skipHashCheck: boolean): Promise<number | SnapshotRestoreError> {
  const snapshotPath = join(root, `file-${runCount}.snap`);
  const dataDir = join(root, `data-${runCount++}`);
  writeFileSync(snapshotPath, file);
  const config = resolveServerConfig({}, settingsFromFlags({ name: 'restored', dataDir, initialCluster: 'restored=http://127.0.0.1:2380' }));
  try {
    return (await restoreSnapshot({ snapshotPath, config, skipHashCheck })).keyCount;
  } catch (error) {
    assert.ok(error instanceof SnapshotRestoreError, `expected a SnapshotRestoreError, got ${(error as Error).stack}`);
    assert.match(error.code, /^CONCORD_E_RESTORE_/);
    assert.ok(error.message.includes(snapshotPath) && !error.message.includes('\n'), error.message);
    return error;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(snapshotPath, { force: true });
  }
}

test('the undamaged file restores every key', async () => {
  assert.equal(await restore(saved, false), KEYS);
});

test('a damaged snapshot file restores every saved key or is refused with a coded error', async (t) => {
  const damage: fc.Arbitrary<Damage> = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }) }),
    fc.record({ kind: fc.constant('replace' as const), bytes: fc.oneof(fc.uint8Array({ maxLength: 1200 }), fc.constant(new Uint8Array(544))) }),
  );
  const outcomes = { restored: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(damage, fc.boolean(), async (d, skipHashCheck) => {
      const outcome = await restore(damaged(d), skipHashCheck);
      if (typeof outcome === 'number') {
        assert.equal(outcome, KEYS, 'a restore that succeeds has every saved key');
        outcomes.restored++;
      } else {
        outcomes.refused++;
      }
    }),
    { numRuns: fuzzRuns(300) },
  );
  t.diagnostic(`damaged snapshot files: ${outcomes.restored} restored, ${outcomes.refused} refused`);
});
