// The controller's reading of the YAML configuration: the pools with an autoscale: section, the
// proxy's keys left alone, and every problem listed by path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autoscaledPools, launchVersionOf, poolSetupOf, readControllerConfig } from '../../src/autoscale/controller/controller-config.ts';
import { AutoscaleConfigError } from '../../src/control/autoscale-config.ts';

const ISSUE_EXAMPLE = {
  provider: { process: { command: 'node examples/app/server.mjs --port {port}', portRange: '9100-9199' } },
  min: 2,
  max: 10,
  target: { inflightPerInstance: 8 },
  scaleIn: { stabilizationMs: 300000 },
  warmupMs: 10000,
};

function problems(raw: unknown): string[] {
  try {
    autoscaledPools(raw);
  } catch (error) {
    if (error instanceof AutoscaleConfigError) return error.problems;
    throw error;
  }
  return [];
}

test('pools with autoscale are read; others and the proxy\'s keys are left alone', () => {
  const pools = autoscaledPools({
    listen: '0.0.0.0:8080',
    pools: [
      { name: 'web', health: { path: '/healthz' }, autoscale: ISSUE_EXAMPLE },
      { name: 'static', backends: ['10.0.0.1:80'] },
    ],
  });
  assert.deepEqual(pools.map((pool) => pool.name), ['web']);
  assert.equal(pools[0]!.config.min, 2);
  assert.equal(pools[0]!.config.hardMaxInstances, 100);
  assert.equal(pools[0]!.config.periodMs, 15_000);
  assert.match(pools[0]!.launchVersion, /^[0-9a-f]{12}$/);
  const setup = poolSetupOf(pools[0]!);
  assert.equal(setup.instancesDieWithController, true, 'a process provider\'s instances die with the controller');
  const provider = pools[0]!.section.provider as { process: { command: string } };
  const edited = { ...pools[0]!.section, provider: { process: { ...provider.process, command: 'node app.mjs --port {port}' } } } as typeof pools[0]['section'];
  assert.notEqual(launchVersionOf(edited), pools[0]!.launchVersion, 'a new command is a new launch version');
});

test('every problem is listed by path', () => {
  assert.deepEqual(problems({ pools: [] }), ['pools: no pool has an autoscale: section, so there is nothing to control']);
  assert.deepEqual(problems({ pools: 'web' }), ['pools: pools must be a list of pools']);
  const listed = problems({
    controlPlane: { autoscale: { hardMaxInstances: 5 } },
    pools: [
      { name: 'web', autoscale: ISSUE_EXAMPLE },
      { name: 'web', autoscale: { ...ISSUE_EXAMPLE, min: 3, max: 2 } },
      { name: 'api', backends: ['10.0.0.1:80'], autoscale: ISSUE_EXAMPLE },
    ],
  });
  assert.ok(listed.includes("pools[0].autoscale.max: max (10) is above the control plane's ceiling autoscale.hardMaxInstances (5): lower max, or raise the ceiling in the control plane's settings"), listed.join('\n'));
  assert.ok(listed.includes("pools[1].name: pool 'web' is defined twice"));
  assert.ok(listed.includes('pools[1].autoscale.min: min (3) is above max (2): lower min or raise max'));
  assert.ok(listed.includes('pools[2].backends: a pool with autoscale takes its backends from the provider: remove the static backends, or remove autoscale'));
  assert.match(problems({ pools: [{ name: '../x', autoscale: ISSUE_EXAMPLE }] })[0]!, /^pools\[0\]\.name: name must be letters/);
  assert.match(problems({ controlPlane: { autoscale: { hardMaxInstances: 0 } }, pools: [{ name: 'web', autoscale: ISSUE_EXAMPLE }] })[0]!, /^controlPlane\.autoscale\.hardMaxInstances/);
});

test('a file: YAML errors and unreadable files say which file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-controller-config-'));
  try {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'pools:\n  - name: web\n    autoscale:\n      provider: { exec: { launch: "l", terminate: "t", list: "ls" } }\n      min: 1\n      max: 3\n      target: { p95LatencyMs: 200 }\n');
    const [pool] = readControllerConfig(good);
    assert.equal(poolSetupOf(pool!).instancesDieWithController, false, 'an exec provider\'s instances outlive the controller');
    assert.equal(poolSetupOf(pool!).listGraceMs, 30_000, 'a cloud\'s list may lag its launches');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'pools: [\n');
    assert.throws(() => readControllerConfig(bad), (error: unknown) => error instanceof AutoscaleConfigError && /bad\.yaml: not valid YAML/.test(error.problems[0]!));
    assert.throws(() => readControllerConfig(join(dir, 'missing.yaml')), (error: unknown) => error instanceof AutoscaleConfigError && /missing\.yaml: cannot read it/.test(error.problems[0]!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
