// `concord chaos --system` refuses what it cannot honour before starting anything: the store-only
// flags (it runs its own members and faults) and a duration too short for its six faults.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli-run.ts';

test('chaos --system refuses --members, --faults and --bug, and a duration under 30 s, with exit code 2', async () => {
  const withMembers = await runCli(['chaos', '--system', '--members', '5']);
  assert.equal(withMembers.code, 2);
  assert.match(withMembers.stderr, /--system runs its own members and faults: drop --members/);
  const withFaults = await runCli(['chaos', '--system', '--faults', 'kill', '--bug', 'ack-before-fsync']);
  assert.equal(withFaults.code, 2);
  assert.match(withFaults.stderr, /drop --faults, --bug/);
  const tooShort = await runCli(['chaos', '--system', '--duration', '20']);
  assert.equal(tooShort.code, 2);
  assert.match(tooShort.stderr, /--duration must be at least 30 with --system/);
});
