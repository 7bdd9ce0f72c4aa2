// The health core with an injected clock: rise/fall, first verdicts, probe timing and jitter,
// detection time, passive ejection (consecutive 5xx, gateway failures, success rate), the
// maximum ejection percentage, re-admission through active checks, and draining.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import type { ActiveCheckOptions, ProbeResult } from '../../src/traffic/health/active-check.ts';
import type { HealthEvent } from '../../src/traffic/health/events.ts';
import type { OutlierOptions, TrafficOutcome } from '../../src/traffic/health/outlier-detection.ts';
import { PoolHealth } from '../../src/traffic/health/pool-health.ts';

const ACTIVE: ActiveCheckOptions & { kind: 'http' } = { kind: 'http', intervalMs: 1000, fastIntervalMs: 500, timeoutMs: 200, rise: 2, fall: 3, jitterPercent: 10 };
const OUTLIER: OutlierOptions = {
  consecutive5xx: 5, consecutiveGatewayFailure: 5, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionMs: 300_000,
  maxEjectionPercent: 50, successRateRequestVolume: 100, successRateMinimumHosts: 5, successRateStdevFactor: 1.9,
};

function pool(ids: string[], options: { active?: typeof ACTIVE | undefined; outlier?: Partial<OutlierOptions> } = {}, assumeHealthy = true): PoolHealth {
  const health = new PoolHealth({ pool: 'web', active: 'active' in options ? options.active : ACTIVE, outlier: { ...OUTLIER, ...options.outlier } }, new SeededRandom(7));
  for (const id of ids) health.addBackend(id, assumeHealthy);
  return health;
}

const probe = (ok: boolean, startedAtMs: number, durationMs = 10, detail = ok ? 'status 200' : 'status 500'): ProbeResult =>
  ({ ok, startedAtMs, finishedAtMs: startedAtMs + durationMs, detail });

const kinds = (events: HealthEvent[]) => events.map((event) => event.kind);

test('fall consecutive failures mark a backend down, with the detection time from the first failed probe', () => {
  const health = pool(['a']);
  assert.deepEqual(kinds(health.recordProbe('a', probe(true, 0))), []);
  assert.deepEqual(kinds(health.recordProbe('a', probe(false, 1000, 200))), []);
  assert.deepEqual(kinds(health.recordProbe('a', probe(false, 1500, 200))), []);
  assert.equal(health.isHealthy('a'), true);
  const [down] = health.recordProbe('a', probe(false, 2000, 200, 'timed out after 200 ms'));
  assert.equal(down!.kind, 'marked-down');
  assert.equal(down!.cause, 'active:http');
  assert.equal(down!.detail, 'timed out after 200 ms');
  assert.equal(down!.detectionMs, 2200 - 1000);
  assert.equal(down!.atMs, 2200);
  assert.equal(health.isHealthy('a'), false);
  assert.deepEqual(kinds(health.recordProbe('a', probe(true, 3000))), []);
  assert.deepEqual(kinds(health.recordProbe('a', probe(true, 3500))), ['marked-up']);
  assert.equal(health.isHealthy('a'), true);
});

test('flapping is damped: alternating results never change the state with rise 2 and fall 3', () => {
  fc.assert(fc.property(fc.array(fc.boolean(), { maxLength: 60 }), (pattern) => {
    const health = pool(['a']);
    health.recordProbe('a', probe(true, 0));
    let t = 1000;
    let failuresInRow = 0;
    let successesInRow = 0;
    let healthy = true;
    for (const ok of pattern) {
      const events = health.recordProbe('a', probe(ok, (t += 1000)));
      failuresInRow = ok ? 0 : failuresInRow + 1;
      successesInRow = ok ? successesInRow + 1 : 0;
      if (healthy && failuresInRow >= 3) healthy = false;
      else if (!healthy && successesInRow >= 2) healthy = true;
      assert.equal(health.isHealthy('a'), healthy);
      assert.ok(events.length <= 1);
    }
  }));
  const health = pool(['a']);
  health.recordProbe('a', probe(true, 0));
  for (let i = 1; i <= 40; i++) assert.deepEqual(health.recordProbe('a', probe(i % 2 === 0, i * 1000)), [], `probe ${i}`);
});

test('the first verdict takes one result: a new backend is up after one pass, an assumed one down after one failure', () => {
  const added = pool(['new'], {}, false);
  assert.equal(added.isHealthy('new'), false, 'a backend added later waits for its first check');
  assert.deepEqual(kinds(added.recordProbe('new', probe(true, 0))), ['marked-up']);
  const started = pool(['old']);
  assert.equal(started.isHealthy('old'), true, 'backends present at start-up are assumed healthy');
  const [down] = started.recordProbe('old', probe(false, 0, 5, 'connection refused'));
  assert.equal(down!.kind, 'marked-down');
  assert.equal(down!.detectionMs, 5);
});

test('probe delays: the first spread over one interval, then interval or fast interval, each within ± jitter', () => {
  const health = pool(['a', 'b', 'c', 'd']);
  const firsts = ['a', 'b', 'c', 'd'].map((id) => health.nextProbeDelayMs(id));
  for (const delay of firsts) assert.ok(delay >= 0 && delay < 1000);
  assert.ok(new Set(firsts).size > 1, 'first probes do not fire in lockstep');
  const steady = Array.from({ length: 50 }, () => health.nextProbeDelayMs('a'));
  for (const delay of steady) assert.ok(delay >= 900 && delay <= 1100, `steady delay ${delay}`);
  assert.ok(new Set(steady).size > 10, 'delays are jittered');
  health.recordProbe('a', probe(true, 0));
  health.recordProbe('a', probe(false, 1000));
  const changing = Array.from({ length: 50 }, () => health.nextProbeDelayMs('a'));
  for (const delay of changing) assert.ok(delay >= 450 && delay <= 550, `fast delay ${delay}`);
});

test('a hung backend is marked down within (fall − 1) × interval + timeout of its first failed probe, plus jitter', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const health = new PoolHealth({ pool: 'web', active: { ...ACTIVE, fastIntervalMs: 1000 }, outlier: OUTLIER }, new SeededRandom(seed));
    health.addBackend('a', true);
    let start = health.nextProbeDelayMs('a');
    health.recordProbe('a', probe(true, start));
    start += health.nextProbeDelayMs('a');
    const firstFailure = start;
    let down: HealthEvent | undefined;
    while (down === undefined) {
      [down] = health.recordProbe('a', probe(false, start, ACTIVE.timeoutMs, 'timed out'));
      start += health.nextProbeDelayMs('a');
    }
    const bound = (ACTIVE.fall - 1) * ACTIVE.intervalMs * (1 + ACTIVE.jitterPercent / 100) + ACTIVE.timeoutMs;
    assert.ok(down.detectionMs! <= bound, `seed ${seed}: detected in ${down.detectionMs} ms, bound ${bound}`);
    assert.equal(down.atMs - firstFailure, down.detectionMs);
  }
});

test('consecutive 5xx eject for base × ejections (capped); re-admission waits for a passing active check', () => {
  const health = pool(['a', 'b']);
  const fail: TrafficOutcome = { kind: 'response', status: 500, shed: false };
  for (let i = 0; i < 4; i++) assert.deepEqual(health.recordOutcome('a', fail, 0), []);
  assert.deepEqual(health.recordOutcome('a', { kind: 'response', status: 200, shed: false }, 0), [], 'a success resets the run');
  for (let i = 0; i < 4; i++) health.recordOutcome('a', fail, 0);
  const [ejected] = health.recordOutcome('a', fail, 100);
  assert.equal(ejected!.kind, 'ejected');
  assert.equal(ejected!.cause, 'passive:consecutive-5xx');
  assert.equal(ejected!.ejectionMs, 30_000);
  assert.equal(health.isHealthy('a'), false);
  assert.equal(health.view('a').state, 'ejected');
  assert.deepEqual(health.tick(30_099, () => 0), []);
  assert.deepEqual(health.tick(30_100, () => 0), []);
  assert.equal(health.isHealthy('a'), false, 'ejection over, but no check has passed yet');
  assert.deepEqual(kinds(health.recordProbe('a', probe(true, 30_200))), ['readmitted']);
  assert.equal(health.isHealthy('a'), true);
  for (let i = 0; i < 5; i++) health.recordOutcome('a', fail, 31_000);
  assert.equal(health.view('a').ejections, 2);
  assert.equal(health.view('a').ejectedUntilMs, 31_000 + 60_000, 'the second ejection lasts twice as long');
  const capped = pool(['a', 'b'], { outlier: { baseEjectionMs: 200_000, maxEjectionMs: 300_000 } });
  for (const at of [0, 1_000_000]) {
    for (let i = 0; i < 5; i++) capped.recordOutcome('a', fail, at);
    capped.tick(at + 400_000, () => 0);
    capped.recordProbe('a', probe(true, at + 400_001));
  }
  assert.equal(capped.view('a').ejections, 2);
});

test('gateway failures and refused connections eject; shed 503s count neither way', () => {
  const health = pool(['a', 'b']);
  for (let i = 0; i < 10; i++) assert.deepEqual(health.recordOutcome('a', { kind: 'response', status: 503, shed: true }, 0), []);
  for (let i = 0; i < 2; i++) health.recordOutcome('a', { kind: 'response', status: 502, shed: false }, 0);
  for (let i = 0; i < 2; i++) health.recordOutcome('a', { kind: 'failure', reason: 'connect' }, 0);
  const [ejected] = health.recordOutcome('a', { kind: 'failure', reason: 'timeout' }, 0);
  assert.equal(ejected!.kind, 'ejected');
  assert.equal(ejected!.cause, 'passive:consecutive-5xx', '5 server errors in a row trip the 5xx detector first');
  const gateway = pool(['a', 'b'], { outlier: { consecutive5xx: 0 } });
  for (let i = 0; i < 4; i++) gateway.recordOutcome('a', { kind: 'failure', reason: 'connect' }, 0);
  assert.equal(gateway.recordOutcome('a', { kind: 'failure', reason: 'reset' }, 0)[0]!.cause, 'passive:consecutive-gateway-failure');
});

test('the maximum ejection percentage holds whatever the traffic', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 100 }),
    fc.array(fc.tuple(fc.nat(11), fc.constantFrom(200, 500, 502)), { maxLength: 300 }),
    (size, percent, traffic) => {
      const ids = Array.from({ length: size }, (_, i) => `b${i}`);
      const health = pool(ids, { active: undefined, outlier: { maxEjectionPercent: percent, consecutive5xx: 2 } });
      let t = 0;
      for (const [index, status] of traffic) {
        health.recordOutcome(ids[index % size]!, { kind: 'response', status, shed: false }, (t += 1000));
        health.tick(t, () => 0);
        const ejected = ids.filter((id) => health.view(id).state === 'ejected').length;
        assert.ok(ejected <= Math.floor((size * percent) / 100), `${ejected} of ${size} ejected at ${percent} %`);
      }
    },
  ));
  const ten = pool(Array.from({ length: 10 }, (_, i) => `b${i}`), { outlier: { maxEjectionPercent: 30 } });
  for (let i = 0; i < 10; i++) for (let k = 0; k < 5; k++) ten.recordOutcome(`b${i}`, { kind: 'response', status: 500, shed: false }, 0);
  assert.equal(ten.ids().filter((id) => ten.view(id).state === 'ejected').length, 3);
});

test('success-rate outliers are ejected at the end of an interval', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const health = pool(ids, { outlier: { consecutive5xx: 0, consecutiveGatewayFailure: 0 } });
  health.tick(0, () => 0);
  for (const id of ids) {
    for (let i = 0; i < 100; i++) {
      const ok = id !== 'e' || i % 2 === 0;
      health.recordOutcome(id, { kind: 'response', status: ok ? 200 : 500, shed: false }, 5000);
    }
  }
  assert.deepEqual(health.tick(9_999, () => 0), []);
  const events = health.tick(10_000, () => 0);
  assert.deepEqual(events.map((event) => [event.backend, event.kind, event.cause]), [['e', 'ejected', 'passive:success-rate']]);
  assert.match(events[0]!.detail, /50\.0 %/);
});

test('without active checks an ejection simply expires', () => {
  const health = pool(['a', 'b'], { active: undefined });
  for (let i = 0; i < 5; i++) health.recordOutcome('a', { kind: 'response', status: 500, shed: false }, 0);
  assert.equal(health.isHealthy('a'), false);
  assert.deepEqual(kinds(health.tick(30_000, () => 0)), ['readmitted']);
  assert.equal(health.isHealthy('a'), true);
});

test('draining: no new requests at once, drained when in-flight requests finish or the deadline passes', () => {
  const health = pool(['a', 'b']);
  assert.deepEqual(kinds(health.startDrain('a', 0, 5000)), ['drain-started']);
  assert.equal(health.isDraining('a'), true);
  assert.equal(health.view('a').state, 'draining');
  let active = 2;
  assert.deepEqual(health.tick(100, () => active), []);
  active = 0;
  const [drained] = health.tick(200, () => active);
  assert.equal(drained!.kind, 'drained');
  assert.match(drained!.detail, /finished in 200 ms/);
  assert.equal(health.view('a').state, 'drained');
  assert.deepEqual(kinds(health.cancelDrain('a', 300)), ['drain-cancelled']);
  assert.equal(health.isDraining('a'), false);
  health.startDrain('b', 0, 1000);
  const [late] = health.tick(1000, () => 3);
  assert.match(late!.detail, /deadline reached with 3 requests still in flight/);
});
