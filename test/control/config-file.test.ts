// The one configuration file: the issues' examples accepted as written (proxy, shed:, autoscale:,
// controlPlane:), every problem refused by path, the JSON Schema for editors, and
// `concord config validate|schema` with their exit codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configJsonSchema, parseConfigText } from '../../src/control/config.ts';
import { toShedSettings } from '../../src/control/shed-config.ts';
import { runCli } from '../support/cli-run.ts';

const PROXY_EXAMPLE = readFileSync(new URL('../../examples/proxy.yaml', import.meta.url), 'utf8');

/** Issue 6's shed: section and issue 7's autoscale: section, exactly as the issues give them. */
const SHED_EXAMPLE = `    shed:
      algorithm: gradient      # fixed | aimd | vegas | gradient | none
      minLimit: 4
      maxLimit: 1000
      queue: { maxLength: 100, maxWaitMs: 50 }
      priority: { header: x-concord-priority, default: default }   # critical | default | sheddable
`;
const AUTOSCALE_POOL = `  - name: app
    autoscale:                # a pool with autoscale takes its backends from the provider; static backends in the same pool are a config error
      provider: { process: { command: "node examples/app/server.mjs --port {port}", portRange: "9100-9199" } }
      min: 2
      max: 10
      target: { inflightPerInstance: 8 }
      scaleIn: { stabilizationMs: 300000 }
      warmupMs: 10000
`;

export function withIssueSections(): string {
  return `${PROXY_EXAMPLE}${SHED_EXAMPLE}${AUTOSCALE_POOL}routes:\n  - { pathPrefix: /app, pool: app }\n  - { pool: web }\n`;
}

function problemsOf(yaml: string): string[] {
  try {
    parseConfigText(yaml);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'CONCORD_E_CONFIG_INVALID');
    return error.message.split('\n').slice(1).map((line) => line.trim());
  }
  assert.fail('the configuration was accepted');
}

test('examples/proxy.yaml with the shed: and autoscale: sections of issues 6 and 7 is accepted as written', () => {
  const config = parseConfigText(withIssueSections());
  const [web, app] = config.pools;
  assert.equal(web!.shed?.algorithm, 'gradient');
  assert.deepEqual([web!.shed!.queue.maxLength, web!.shed!.queue.maxWaitMs, web!.shed!.priority.header], [100, 50, 'x-concord-priority']);
  assert.equal(toShedSettings(web!.shed!).minLimit, 4, 'the section becomes the shedding core\'s settings');
  assert.deepEqual([app!.autoscale!.min, app!.autoscale!.max, app!.autoscale!.warmupMs, app!.backends.length], [2, 10, 10_000, 0]);
  assert.deepEqual(config.controlPlane.admin, '127.0.0.1:7070', 'the control plane\'s admin API defaults to 127.0.0.1:7070');
  assert.equal(config.controlPlane.autoscale.hardMaxInstances, 100);
  assert.deepEqual(config.controlPlane.health, { refreshMs: 5000, maxResultAgeMs: 15_000, maxConcurrentChecks: 64 });
  assert.deepEqual(config.controlPlane.events, { maxEvents: 10_000, maxAgeMs: 604_800_000 });
});

test('proxy.store takes a location, or a location with TLS files', () => {
  assert.deepEqual(parseConfigText('proxy: { store: "etcd://10.0.0.1:2379,10.0.0.2:2379" }').proxy.store, { url: 'etcd://10.0.0.1:2379,10.0.0.2:2379' });
  assert.deepEqual(parseConfigText('proxy: { store: { url: "etcds://10.0.0.1:2379", caFile: ca.pem } }').proxy.store, { url: 'etcds://10.0.0.1:2379', caFile: 'ca.pem' });
  assert.match(problemsOf('proxy: { store: "etcd://10.0.0.1" }').join('\n'), /^proxy\.store: .*'10\.0\.0\.1' in 'etcd:\/\/10\.0\.0\.1' is not host:port/m);
});

test('a bad configuration is refused whole, with every problem by path', () => {
  const yaml = `
controlPlane:
  autoscale: { hardMaxInstances: 5 }
  health: { refreshMs: 5000, maxResultAgeMs: 6000 }
pools:
  - name: web
    backends: [{ address: 127.0.0.1:9001 }]
    health: { http: { path: /healthz }, fall: 0 }
    shed: { algorithm: aimd, queue: { maxWaitMs: 0 } }
  - name: app
    backends: [{ address: 127.0.0.1:9002 }]
    autoscale: { provider: { process: { command: "app --port {port}", portRange: "9100-9199" } }, min: 2, max: 10, target: { inflightPerInstance: 8 } }
routes: [{ pool: web }, { pool: nowhere }]
`;
  const problems = problemsOf(yaml);
  const expected = [
    /^pools\[0\]\.health\.fall: must be at least 1$/,
    /^pools\[0\]\.shed\.queue\.maxWaitMs: Too small/,
    /^pools\[1\]\.backends: a pool with autoscale takes its backends from the provider/,
    /^pools\[1\]\.autoscale\.max: max \(10\) is above the control plane's ceiling autoscale\.hardMaxInstances \(5\)/,
    /^controlPlane\.health\.maxResultAgeMs: maxResultAgeMs \(6000\) must exceed membership\.leaseTtlSeconds × 1000 \+ health\.refreshMs \(10000\)/,
    /^routes\[1\]\.pool: no pool named 'nowhere'/,
  ];
  for (const pattern of expected) assert.ok(problems.some((line) => pattern.test(line)), `${pattern} not among:\n${problems.join('\n')}`);
  assert.equal(problems.length, expected.length, problems.join('\n'));
  // A value of the wrong kind is listed too (the checks across fields wait until the kinds are right).
  assert.match(problemsOf(yaml.replace('algorithm: aimd', 'algorithm: fastest')).join('\n'), /^pools\[0\]\.shed\.algorithm: Invalid option/m);
});

test('the JSON Schema describes every section, with defaults, for editors', () => {
  const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }>; additionalProperties: boolean };
  assert.deepEqual(Object.keys(schema.properties).sort(), ['controlPlane', 'pools', 'proxy', 'routes', 'server']);
  assert.equal(schema.additionalProperties, false, 'an unknown top-level key is flagged in the editor');
  const controlPlane = schema.properties.controlPlane!.properties!;
  assert.deepEqual((controlPlane.admin as { default: string }).default, '127.0.0.1:7070');
  const pool = (schema.properties.pools as unknown as { items: { properties: Record<string, unknown> } }).items.properties;
  for (const key of ['shed', 'autoscale', 'health', 'backends', 'balance']) assert.ok(key in pool, `pools[].${key} is described`);
});

test('concord config validate and schema: exit 0 for a good file, 2 with every problem for a bad one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-config-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, withIssueSections());
  const valid = await runCli(['config', 'validate', good]);
  assert.deepEqual([valid.code, valid.stderr], [0, '']);
  assert.match(valid.stdout, /good\.yaml is valid: 2 pools: web \(2 backends, health every 1000 ms, shed gradient\); app \(autoscaled 2-10\)\n$/);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, PROXY_EXAMPLE.replace('rise: 2', 'rise: 0').replace('balance: p2c', 'balance: fastest'));
  const invalid = await runCli(['config', 'validate', bad]);
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /^concord config validate: .*bad\.yaml is invalid:\n {2}pools\[0\]\.balance: Invalid option.*\n {2}pools\[0\]\.health\.rise: must be at least 1\n$/);
  const missing = await runCli(['config', 'validate', join(dir, 'nowhere.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*nowhere\.yaml/);

  const schema = await runCli(['config', 'schema']);
  assert.equal(schema.code, 0);
  assert.equal((JSON.parse(schema.stdout) as { title: string }).title, 'Concord configuration');
});
