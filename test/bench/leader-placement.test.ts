// The store benchmark's leader placement, against real 3-member clusters of both systems: the
// leader is moved to the member asked for, and the placement reports where it was.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { placeLeaderOn, placeLeaderOnFirstMember } from '../../bench/leader-placement.ts';
import { ETCD_BINARY, startSystem, type SystemName } from '../../bench/store-systems.ts';

for (const system of ['concord', 'etcd'] as const satisfies readonly SystemName[]) {
  test(`${system}, 3 members: the leader is moved to member 3, then back to member 1, and the move is reported`, async () => {
    if (system === 'etcd') assert.ok(existsSync(ETCD_BINARY), `${ETCD_BINARY} is missing: install the test dependencies with 'sudo bash scripts/install-test-deps.sh'`);
    const root = mkdtempSync(join(tmpdir(), 'concord-leader-placement-'));
    const running = await startSystem(system, { dataRoot: root, logPath: join(root, `${system}.log`), members: 3 });
    try {
      const endpoints = running.endpoint.split(',');
      await placeLeaderOn(endpoints, 2);
      assert.equal((await placeLeaderOn(endpoints, 2)).leaderBefore, 3, 'already on member 3: nothing moves');
      assert.equal((await placeLeaderOnFirstMember(endpoints)).leaderBefore, 3);
      assert.equal((await placeLeaderOnFirstMember(endpoints)).leaderBefore, 1, 'member 1 leads now');
    } finally {
      await running.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
}
