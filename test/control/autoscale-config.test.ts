// The pool's autoscale section and the control plane's autoscaling settings: the issue's example
// is accepted as written, and every invalid configuration is refused with the field's path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  AutoscaleConfigError, autoscaledPoolProblem, autoscaleSchema, parseAutoscaleSection, parseControlPlaneSettings, refineAutoscaledPool, toPolicyConfig,
} from '../../src/control/autoscale-config.ts';
import { DEFAULT_POLICY } from '../../src/autoscale/policy/defaults.ts';

const EXAMPLE = `
pools:
  - name: web
    autoscale:                # a pool with autoscale takes its backends from the provider; static backends in the same pool are a config error
      provider: { process: { command: "node examples/app/server.mjs --port {port}", portRange: "9100-9199" } }
      min: 2
      max: 10
      target: { inflightPerInstance: 8 }
      scaleIn: { stabilizationMs: 300000 }
      warmupMs: 10000
`;

const settings = parseControlPlaneSettings(undefined);
const options = { hardMaxInstances: settings.autoscale.hardMaxInstances, path: 'pools[0].autoscale' };

function problems(raw: unknown, hardMaxInstances = 100): string[] {
  try {
    parseAutoscaleSection(raw, { hardMaxInstances, path: 'pools[0].autoscale' });
  } catch (error) {
    assert.ok(error instanceof AutoscaleConfigError);
    assert.equal(error.code, 'CONCORD_E_CONFIG_INVALID');
    return error.problems;
  }
  return [];
}

const valid = () => ({ provider: { process: { command: 'node app.mjs --port {port}', portRange: '9100-9199' } }, min: 2, max: 10, target: { inflightPerInstance: 8 } });

test("the issue's example is accepted exactly as written, and the missing keys take the policy's defaults", () => {
  const document = parseYaml(EXAMPLE) as { pools: { autoscale: unknown }[] };
  const section = parseAutoscaleSection(document.pools[0]!.autoscale, options);
  assert.deepEqual(section.provider, { process: { command: 'node examples/app/server.mjs --port {port}', portRange: '9100-9199', host: '127.0.0.1', stopGraceMs: 10_000 } });
  const config = toPolicyConfig('web', section, settings);
  assert.equal(config.pool, 'web');
  assert.deepEqual([config.min, config.max, config.hardMaxInstances, config.warmupMs], [2, 10, 100, 10_000]);
  assert.deepEqual(config.target, { inflightPerInstance: 8 });
  assert.equal(config.scaleIn.stabilizationMs, 300_000);
  assert.deepEqual(config.scaleIn.rateLimits, DEFAULT_POLICY.scaleIn.rateLimits);
  assert.deepEqual(config.scaleOut, DEFAULT_POLICY.scaleOut);
  assert.deepEqual(config.runaway, DEFAULT_POLICY.runaway);
  assert.deepEqual(config.replacement, DEFAULT_POLICY.replacement);
  assert.equal(config.periodMs, 15_000);
  assert.equal(config.dryRun, false);
});

test('every key can be set; rate limits read as { instances } or { percent }', () => {
  const section = parseAutoscaleSection({
    ...valid(),
    periodMs: 10_000,
    target: { inflightPerInstance: 8, p95LatencyMs: 250, external: { queueDepth: 100 } },
    tolerancePercent: 5,
    scaleOut: { rateLimits: [{ instances: 10, periodMs: 10_000 }, { percent: 200, periodMs: 10_000 }], select: 'max', cooldownMs: 0 },
    scaleIn: { stabilizationMs: 600_000, rateLimits: [{ percent: 10, periodMs: 60_000 }], select: 'min', cooldownMs: 120_000 },
    metrics: { maxAgeMs: 30_000, minCoveragePercent: 90 },
    drainDeadlineMs: 20_000,
    dependencies: [{ name: 'db', costPerInstance: 20, budget: 500 }],
    runaway: { windowMs: 300_000, maxGrowthPerWindow: 20, maxUnexplainedGrowthFactor: 4, confirmPeriods: 3, minAddedInstances: 3, minGoodputGainPercent: 5 },
    replacement: { failingForMs: 30_000, startupTimeoutMs: 120_000, maxSharePercent: 20, holdAboveUnhealthyPercent: 40 },
    schedules: [{ name: 'morning', cron: '30 7 * * 1-5', durationMs: 7_200_000, timeZone: 'Europe/Paris', min: 6 }],
    batchAdmission: { maxUtilizationPercent: 60 },
    refresh: { minHealthyPercent: 80, readyTimeoutMs: 60_000 },
    dryRun: true,
  }, options);
  const config = toPolicyConfig('api', section, settings);
  assert.deepEqual(config.scaleOut.rateLimits, [{ type: 'instances', value: 10, periodMs: 10_000 }, { type: 'percent', value: 200, periodMs: 10_000 }]);
  assert.deepEqual(config.scaleIn, { stabilizationMs: 600_000, rateLimits: [{ type: 'percent', value: 10, periodMs: 60_000 }], select: 'min', cooldownMs: 120_000 });
  assert.deepEqual(config.batchAdmission, { maxUtilizationPercent: 60 });
  assert.equal(config.schedules[0]!.timeZone, 'Europe/Paris');
  assert.equal(config.dryRun, true);
});

test('min above max, max above the ceiling and a zero period are refused, naming the field', () => {
  assert.deepEqual(problems({ ...valid(), min: 5, max: 3 }), ['pools[0].autoscale.min: min (5) is above max (3): lower min or raise max']);
  assert.deepEqual(problems({ ...valid(), max: 150, provider: { process: { command: 'x {port}', portRange: '9000-9999' } } }), [
    "pools[0].autoscale.max: max (150) is above the control plane's ceiling autoscale.hardMaxInstances (100): lower max, or raise the ceiling in the control plane's settings",
  ]);
  assert.deepEqual(problems({ ...valid(), periodMs: 0 }), ['pools[0].autoscale.periodMs: periodMs (milliseconds) must be at least 1']);
  assert.deepEqual(problems({ ...valid(), scaleIn: { rateLimits: [{ percent: 10, periodMs: 0 }] } }), ['pools[0].autoscale.scaleIn.rateLimits[0].periodMs: periodMs (milliseconds) must be at least 1']);
  assert.deepEqual(problems({ ...valid(), max: 8 }, 5), [
    "pools[0].autoscale.max: max (8) is above the control plane's ceiling autoscale.hardMaxInstances (5): lower max, or raise the ceiling in the control plane's settings",
  ]);
});

test('other mistakes are refused with what to do, all of them at once', () => {
  const found = problems({
    provider: { process: { command: 'node app.mjs', portRange: '9100-9102' } },
    min: 0,
    max: 10,
    target: {},
    tolerancePercent: 100,
    scaleOut: { rateLimits: [{ instances: 4, percent: 100, periodMs: 15_000 }] },
    schedules: [{ name: 'x', cron: '0 25 * * *', durationMs: 60_000, timeZone: 'Mars/Olympus', min: 3 }],
    dependencies: [{ name: 'db', costPerInstance: 0, budget: 10 }],
    maxInstances: 3,
  });
  const expected = [
    /^pools\[0\]\.autoscale\.provider\.process\.command: command must contain '\{port\}'/,
    /^pools\[0\]\.autoscale\.min: min must be at least 1$/,
    /^pools\[0\]\.autoscale\.target: target needs at least one signal/,
    /^pools\[0\]\.autoscale\.tolerancePercent: tolerancePercent must be below 100 %$/,
    /^pools\[0\]\.autoscale\.scaleOut\.rateLimits\[0\]: a rate limit gives either instances or percent/,
    /^pools\[0\]\.autoscale\.dependencies\[0\]\.costPerInstance: costPerInstance must be above 0$/,
    /^pools\[0\]\.autoscale\.schedules\[0\]\.cron: cron hour field '25': '25' is outside 0-23$/,
    /^pools\[0\]\.autoscale\.schedules\[0\]\.timeZone: timeZone must be an IANA time zone/,
    /^pools\[0\]\.autoscale: Unrecognized key: "maxInstances"$/,
  ];
  for (const pattern of expected) assert.ok(found.some((problem) => pattern.test(problem)), `no problem matches ${pattern}:\n${found.join('\n')}`);
});

test('cross-field checks: ports for every instance, schedules within bounds, the minimum within dependency budgets', () => {
  assert.deepEqual(problems({ ...valid(), provider: { process: { command: 'x {port}', portRange: '9100-9104' } } }), [
    'pools[0].autoscale.provider.process.portRange: portRange 9100-9104 has 5 ports but max is 10: every instance needs its own port',
  ]);
  assert.deepEqual(problems({ ...valid(), schedules: [{ name: 'a', cron: '0 8 * * *', durationMs: 3_600_000, min: 12 }, { name: 'a', cron: '0 8 * * *', durationMs: 3_600_000, max: 1 }] }), [
    "pools[0].autoscale.schedules[0].min: min (12) is above the pool's max (10)",
    "pools[0].autoscale.schedules[1].name: schedule name 'a' is used twice",
    "pools[0].autoscale.schedules[1].max: max (1) is below the pool's min (2)",
  ]);
  assert.deepEqual(problems({ ...valid(), min: 30, max: 40, dependencies: [{ name: 'db', costPerInstance: 20, budget: 500 }] }), [
    'pools[0].autoscale.dependencies[0].budget: the minimum of 30 instances costs 600 of db, over its budget of 500',
  ]);
});

test('the exec provider is accepted with its defaults; an unknown provider is refused', () => {
  const section = parseAutoscaleSection({ ...valid(), provider: { exec: { launch: 'asg launch', terminate: 'asg terminate {instanceId}', list: 'asg list' } } }, options);
  assert.deepEqual(section.provider, { exec: { launch: 'asg launch', terminate: 'asg terminate {instanceId}', list: 'asg list', timeoutMs: 30_000, retries: 2, retryBackoffMs: 1_000, maxOutputBytes: 1_048_576 } });
  assert.deepEqual(problems({ ...valid(), provider: { docker: {} } }), ['pools[0].autoscale.provider: provider must be { process: { command, portRange } } or { exec: { launch, terminate, list } }']);
});

test('a pool with autoscale and static backends is refused (the helper the proxy schema calls)', () => {
  const poolSchema = z
    .object({ name: z.string(), backends: z.array(z.object({ address: z.string() })).optional(), autoscale: autoscaleSchema({ hardMaxInstances: 100 }).optional() })
    .superRefine(refineAutoscaledPool);
  const both = poolSchema.safeParse({ name: 'web', backends: [{ address: '127.0.0.1:9001' }], autoscale: valid() });
  assert.equal(both.success, false);
  assert.deepEqual(both.error!.issues.map((issue) => [issue.path.join('.'), issue.message]), [
    ['backends', 'a pool with autoscale takes its backends from the provider: remove the static backends, or remove autoscale'],
  ]);
  assert.equal(poolSchema.safeParse({ name: 'web', autoscale: valid() }).success, true);
  assert.equal(poolSchema.safeParse({ name: 'web', backends: [{ address: '127.0.0.1:9001' }] }).success, true);
  assert.equal(autoscaledPoolProblem({ backends: [], autoscale: {} }), undefined);
});

test("the control plane's settings: autoscale.hardMaxInstances defaults to 100 and is validated", () => {
  assert.equal(parseControlPlaneSettings({}).autoscale.hardMaxInstances, 100);
  assert.equal(parseControlPlaneSettings({ autoscale: { hardMaxInstances: 250 } }).autoscale.hardMaxInstances, 250);
  assert.throws(() => parseControlPlaneSettings({ autoscale: { hardMaxInstances: 0 } }), /controlPlane\.autoscale\.hardMaxInstances: hardMaxInstances must be at least 1/);
  assert.throws(() => parseControlPlaneSettings({ autoscale: { hardMax: 5 } }), /controlPlane\.autoscale: Unrecognized key: "hardMax"/);
});
