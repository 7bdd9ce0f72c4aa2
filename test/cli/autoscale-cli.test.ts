// `concord autoscale` and `concord controller` through the CLI entry point, in this process: exit
// codes (0 done, 2 what the user can fix, 1 the store unreachable) and the one-line errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli as run } from '../support/cli-run.ts';
import { freePort } from '../support/free-port.ts';
import { startTestStore } from '../autoscale/controller-harness.ts';

test('freeze, status --json and unfreeze; usage errors exit 2, an unreachable store 1', async (t) => {
  const store = await startTestStore();
  t.after(() => store.stop());
  const endpoints = ['--endpoints', store.endpoint];

  const frozen = await run(['autoscale', 'freeze', '--pool', 'web', '--reason', 'deploy', '--by', 'alice', ...endpoints]);
  assert.deepEqual([frozen.code, frozen.stderr], [0, '']);
  assert.match(frozen.stdout, /^frozen pool web \(\/concord\/autoscale\/freeze\/web\): the leader takes no action from its next control period on\n$/);
  const status = await run(['autoscale', 'status', '--json', ...endpoints]);
  assert.equal(status.code, 0);
  const report = JSON.parse(status.stdout) as { pools: { pool: string; freeze: { by: string; reason: string } }[] };
  assert.deepEqual(report.pools.map((pool) => [pool.pool, pool.freeze.by, pool.freeze.reason]), [['web', 'alice', 'deploy']]);
  const unfrozen = await run(['autoscale', 'unfreeze', '--pool', 'web', ...endpoints]);
  assert.match(unfrozen.stdout, /^unfrozen pool web \(was frozen by alice at .*: deploy\)\n$/);
  assert.match((await run(['autoscale', 'unfreeze', ...endpoints])).stdout, /every pool: not frozen/);

  const noReason = await run(['autoscale', 'freeze', '--reason', '  ', ...endpoints]);
  assert.deepEqual([noReason.code, noReason.stderr], [2, 'concord autoscale: a freeze needs a reason (--reason TEXT): the next person to look will want to know why\n']);
  assert.equal((await run(['autoscale', 'freeze', ...endpoints])).code, 2, 'commander: --reason is required');
  const both = await run(['autoscale', 'status', '--store', `etcd://${store.endpoint}`, ...endpoints]);
  assert.deepEqual([both.code, both.stderr], [2, 'concord autoscale: --store and --endpoints name the same thing: give one of them\n']);
  const unreachable = await run(['autoscale', 'status', '--endpoints', `127.0.0.1:${await freePort()}`]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /unreachable or did not answer/);
});

test('concord controller refuses a bad configuration or missing flags with exit 2, before connecting', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-controller-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'bad.yaml');
  writeFileSync(config, 'pools:\n  - name: web\n    autoscale: { provider: { process: { command: "app --port {port}", portRange: "9100-9101" } }, min: 3, max: 2, target: { inflightPerInstance: 8 } }\n');
  const bad = await run(['controller', '--config', config, '--metrics-url', 'http://127.0.0.1:7071/backends']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /pools\[0\]\.autoscale\.min: min \(3\) is above max \(2\)/);
  const noMetrics = await run(['controller', '--config', config]);
  assert.deepEqual([noMetrics.code, noMetrics.stderr], [2, "concord controller: --metrics-url is required: the proxies' admin endpoints (GET /backends) are where the autoscaler learns load and health\n"]);
  const badName = await run(['controller', '--config', config, '--name', 'no spaces', '--metrics-url', 'http://x:1/backends']);
  assert.equal(badName.code, 2);
  assert.match(badName.stderr, /--name 'no spaces' must be letters/);
  assert.equal((await run(['controller', '--config', config, '--lease-ttl-seconds', '0'])).code, 2);
});
