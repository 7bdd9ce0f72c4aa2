// The shared configuration schema: the file is accepted exactly as written, defaults are
// filled in, and bad input is refused with every problem named by its path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfigText, parseHostPort } from '../../src/control/config.ts';
import { proxyConfigFrom } from '../../src/cli/proxy.ts';

const EXAMPLE = readFileSync(new URL('../../examples/proxy.yaml', import.meta.url), 'utf8');

test('examples/proxy.yaml (the file from the issue) is accepted as written, with defaults filled in', () => {
  const config = parseConfigText(EXAMPLE);
  assert.equal(config.proxy.listen, '127.0.0.1:8080');
  assert.equal(config.proxy.admin, '127.0.0.1:9901');
  const [pool] = config.pools;
  assert.equal(pool!.balance, 'p2c');
  assert.deepEqual(pool!.backends.map((b) => [b.address, b.zone, b.weight]), [['127.0.0.1:9001', 'a', 1], ['127.0.0.1:9002', 'b', 1]]);
  assert.deepEqual(pool!.health!.http, { method: 'GET', path: '/healthz', expectStatus: '200-299', expectBody: 'ok', bodyCheckBytes: 4096 });
  assert.deepEqual([pool!.health!.intervalMs, pool!.health!.timeoutMs, pool!.health!.rise, pool!.health!.fall], [1000, 500, 2, 3]);
  assert.equal(pool!.retries.budgetPercent, 20);
  assert.equal(pool!.outlierDetection.consecutive5xx, 5);
  assert.equal(pool!.slowStart.windowMs, 30_000);
  assert.equal(pool!.panicThresholdPercent, 50);
});

test('the issue 6 shed: section and an autoscale: section are accepted in a pool', () => {
  const withSections = EXAMPLE.replace('      fall: 3\n', `      fall: 3
    shed:
      algorithm: gradient      # fixed | aimd | vegas | gradient | none
      minLimit: 4
      maxLimit: 1000
      queue: { maxLength: 100, maxWaitMs: 50 }
      priority: { header: x-concord-priority, default: default }   # critical | default | sheddable
`);
  const config = parseConfigText(withSections);
  assert.equal((config.pools[0]!.shed as { algorithm: string }).algorithm, 'gradient');
});

function problems(yaml: string): string {
  try {
    parseConfigText(yaml);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'CONCORD_E_CONFIG_INVALID');
    return error.message;
  }
  assert.fail('the config was accepted');
}

test('bad config is refused with a message naming the field', () => {
  const cases: [string, string, RegExp][] = [
    ['balance: p2c', 'balance: fastest', /pools\[0\]\.balance: Invalid option/],
    ['rise: 2', 'rise: 0', /pools\[0\]\.health\.rise: must be at least 1/],
    ['fall: 3', 'fall: 0', /pools\[0\]\.health\.fall: must be at least 1/],
    ['127.0.0.1:9001', 'localhost', /pools\[0\]\.backends\[0\]\.address: 'localhost' is not HOST:PORT/],
    ['127.0.0.1:9002', '127.0.0.1:99999', /pools\[0\]\.backends\[1\]\.address: .*above 65535/],
    ['listen: 127.0.0.1:8080', 'listen: 8080', /proxy\.listen: must be HOST:PORT, e.g. 127\.0\.0\.1:8080/],
    ['expectBody: ok', 'expectBodyRegex: "([a-z"', /pools\[0\]\.health\.http\.expectBodyRegex: does not compile as a regular expression/],
    ['"200-299"', '"299-200"', /pools\[0\]\.health\.http\.expectStatus: '299-200' must lie within 100-599, low end first/],
    ['timeoutMs: 500', 'timeoutMs: 5000', /pools\[0\]\.health\.timeoutMs: must not exceed intervalMs \(1000\)/],
    ['rise: 2', 'rise: 2\n      risee: 3', /pools\[0\]\.health: Unrecognized key: "risee"/],
    ['127.0.0.1:9002', '127.0.0.1:9001', /pools\[0\]\.backends\[1\]\.address: 127\.0\.0\.1:9001 is listed twice/],
    ['balance: p2c', 'balance: hash', /pools\[0\]\.hash: balance: hash needs hash/],
  ];
  for (const [from, to, expected] of cases) {
    assert.ok(EXAMPLE.includes(from), from);
    assert.match(problems(EXAMPLE.replace(from, to)), expected);
  }
  assert.match(problems('proxy: {}\npools:\n  - name: a\n    backends: []\n'), /pools\[0\]\.backends: a pool needs at least one backend/);
  assert.match(problems('pool:\n  - name: a\n'), /\(top level\): Unrecognized key: "pool"/);
  assert.match(problems('proxy: [1'), /not valid YAML/);
  const twoPools = `${EXAMPLE}  - name: api\n    backends: [{ address: 127.0.0.1:9003 }]\n`;
  assert.match(problems(twoPools), /routes: several pools need routes/);
  assert.match(problems(`${twoPools}routes:\n  - { pathPrefix: /api, pool: apii }\n`), /routes\[0\]\.pool: no pool named 'apii'/);
  const all = problems(EXAMPLE.replace('rise: 2', 'rise: 0').replace('fall: 3', 'fall: 0'));
  assert.match(all, /rise/);
  assert.match(all, /fall/, 'every problem is listed at once');
});

test('host:port parsing: IPv4, names, bracketed IPv6; port 0 only for listeners', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  assert.deepEqual(parseHostPort('[::1]:9001'), { host: '::1', port: 9001 });
  assert.deepEqual(parseHostPort('backend.internal:443'), { host: 'backend.internal', port: 443 });
  assert.equal(typeof parseHostPort('::1:80'), 'string');
  assert.equal(typeof parseHostPort('http://a:80'), 'string');
  assert.match(problems(EXAMPLE.replace('127.0.0.1:9001', '127.0.0.1:0')), /a backend needs a real port/);
  assert.equal(parseConfigText(EXAMPLE.replace('127.0.0.1:8080', '127.0.0.1:0')).proxy.listen, '127.0.0.1:0');
});

test('flags override the file and are checked too', () => {
  const path = new URL('../../examples/proxy.yaml', import.meta.url).pathname;
  const config = proxyConfigFrom({ config: path, listen: '127.0.0.1:18080', workers: '2' });
  assert.equal(config.proxy.listen, '127.0.0.1:18080');
  assert.equal(config.proxy.workers, 2);
  assert.throws(() => proxyConfigFrom({ config: path, workers: 'many' }), /--workers: 'many'/);
  assert.throws(() => proxyConfigFrom({ config: '/nonexistent.yaml' }), /cannot read config file/);
});
