// The `shed:` section: the issue's example is accepted as written, defaults fill the rest, and
// every mistake gets an error that names the field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { parseShedConfig, ShedConfigError } from '../../src/control/shed-config.ts';

const ISSUE_EXAMPLE = `
pools:
  - name: web
    shed:
      algorithm: gradient      # fixed | aimd | vegas | gradient | none
      minLimit: 4
      maxLimit: 1000
      queue: { maxLength: 100, maxWaitMs: 50 }
      priority: { header: x-concord-priority, default: default }   # critical | default | sheddable
`;

test("the issue's shed section is accepted as written, with defaults for the rest", () => {
  const document = parseYaml(ISSUE_EXAMPLE) as { pools: { shed: unknown }[] };
  const settings = parseShedConfig(document.pools[0]!.shed, 'pools[0].shed');
  assert.equal(settings.algorithm, 'gradient');
  assert.equal(settings.minLimit, 4);
  assert.equal(settings.maxLimit, 1000);
  assert.deepEqual(settings.queue, { maxLength: 100, maxWaitMs: 50, order: 'adaptive-lifo', overloadedWaitMs: 5, overloadIntervalMs: 100 });
  assert.equal(settings.priority.header, 'x-concord-priority');
  assert.equal(settings.priority.default, 'default');
  assert.deepEqual(settings.priority.reservedShare, { critical: 0.1, default: 0.1, sheddable: 0 });
  assert.equal(settings.gradient.sampleWindowMs, 100);
  assert.equal(settings.gradient.minRttJitter, 0.15);
  assert.deepEqual(settings.circuitBreaker, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 });
  assert.equal(settings.clientRateLimit, undefined);
  assert.equal(parseShedConfig(undefined).algorithm, 'gradient', 'an absent section gets every default');
});

test('rules, exemptions and client rate limits are normalized (header names lower case, methods upper case)', () => {
  const settings = parseShedConfig({
    algorithm: 'fixed',
    fixed: { limit: 64 },
    priority: { header: 'X-Priority', rules: [{ pathPrefix: '/pay', method: 'post', priority: 'critical' }, { header: { name: 'X-Bot' }, priority: 'sheddable' }] },
    exempt: [{ path: '/healthz' }],
    clientRateLimit: { keyHeader: 'X-Api-Key', ratePerSecond: 50 },
  });
  assert.equal(settings.fixed.limit, 64);
  assert.equal(settings.priority.header, 'x-priority');
  assert.deepEqual(settings.priority.rules, [{ pathPrefix: '/pay', method: 'POST', priority: 'critical' }, { header: { name: 'x-bot' }, priority: 'sheddable' }]);
  assert.deepEqual(settings.clientRateLimit, { keyHeader: 'x-api-key', ratePerSecond: 50, burst: 50, maxClients: 10_000 });
});

test('bad values are refused with the field named and what is wrong', () => {
  const cases: [unknown, RegExp][] = [
    [{ algorithm: 'bbr' }, /pools\[0\]\.shed\.algorithm: .*"none"\|"fixed"\|"aimd"\|"vegas"\|"gradient"/],
    [{ minLimit: 0 }, /pools\[0\]\.shed\.minLimit: .*>=1/],
    [{ minLimit: 10, maxLimit: 5 }, /pools\[0\]\.shed\.maxLimit: must be at least minLimit \(10\)/],
    [{ initialLimit: 2000 }, /pools\[0\]\.shed\.initialLimit: must be between minLimit \(4\) and maxLimit \(1000\)/],
    [{ algorithm: 'fixed' }, /pools\[0\]\.shed\.fixed\.limit: is required with algorithm: fixed/],
    [{ queue: { maxWaitMs: 0 } }, /pools\[0\]\.shed\.queue\.maxWaitMs: .*>0/],
    [{ queue: { maxLength: -1 } }, /pools\[0\]\.shed\.queue\.maxLength/],
    [{ queue: { maxLenght: 10 } }, /pools\[0\]\.shed\.queue: Unrecognized key: "maxLenght"/],
    [{ priority: { default: 'urgent' } }, /pools\[0\]\.shed\.priority\.default: .*"critical"\|"default"\|"sheddable"/],
    [{ priority: { header: 'x priority' } }, /pools\[0\]\.shed\.priority\.header: must be an HTTP header name/],
    [{ priority: { rules: [{ priority: 'critical' }] } }, /pools\[0\]\.shed\.priority\.rules\[0\]: a rule needs at least one of path, pathPrefix, method, header/],
    [{ priority: { rules: [{ path: 'api', priority: 'critical' }] } }, /pools\[0\]\.shed\.priority\.rules\[0\]\.path: must start with \//],
    [{ priority: { reservedShare: { critical: 0.6, default: 0.6 } } }, /pools\[0\]\.shed\.priority\.reservedShare: the shares add up to 1\.2/],
    [{ exempt: [{}] }, /pools\[0\]\.shed\.exempt\[0\]: a rule needs at least one/],
    [{ gradient: { percentile: 0 } }, /pools\[0\]\.shed\.gradient\.percentile/],
    [{ gradient: { dropBackoffRatio: 1 } }, /pools\[0\]\.shed\.gradient\.dropBackoffRatio/],
    [{ clientRateLimit: { burst: 5 } }, /pools\[0\]\.shed\.clientRateLimit\.ratePerSecond/],
    [{ circuitBreaker: { maxRequests: 0 } }, /pools\[0\]\.shed\.circuitBreaker\.maxRequests/],
    ['gradient', /pools\[0\]\.shed: .*expected object/],
  ];
  for (const [section, expected] of cases) {
    assert.throws(() => parseShedConfig(section, 'pools[0].shed'), (error: unknown) => {
      assert.ok(error instanceof ShedConfigError);
      assert.equal(error.code, 'CONCORD_E_SHED_CONFIG_INVALID');
      assert.match(error.message, expected);
      return true;
    }, JSON.stringify(section));
  }
});
