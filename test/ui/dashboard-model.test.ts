// The page's pure model (src/ui/browser/model): formatting, chart history and geometry, the event
// timeline's merge, the contract check and the backend state words. No browser needed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { TimelineEntry } from '../../src/ui/api-types.ts';
import { BACKEND_STATE_LOOK, backendStateLook, drainActionFor } from '../../src/ui/browser/model/backend-state.js';
import { chartGeometry, niceCeiling, pointsOf } from '../../src/ui/browser/model/chart-geometry.js';
import { eventProblems, overviewProblems, sessionProblems } from '../../src/ui/browser/model/contract-check.js';
import { formatAge, formatAxisValue, formatCount, formatMs, formatPercent, formatRate, formatTimeUtc, UNKNOWN_TEXT } from '../../src/ui/browser/model/format.js';
import { appendSample, autoscaledPools, sampleOf, type Sample } from '../../src/ui/browser/model/history.js';
import { eventKey, eventTone, filterEvents, mergeEvents, newestEventAt } from '../../src/ui/browser/model/timeline.js';
import { sampleEvents, sampleOverview } from './stub-control-plane.ts';

const NOW_MS = Date.parse('2025-01-07T10:14:02.118Z');

test('numbers, durations and times read as a person expects; unknown is a dash, never zero', () => {
  assert.equal(formatCount(1_234_567), '1,234,567');
  assert.equal(formatCount(-1234), '-1,234');
  assert.equal(formatCount(999), '999');
  assert.equal(formatRate(41.46), '41.5/s');
  assert.equal(formatRate(12_345.6), '12,346/s');
  assert.equal(formatMs(null), UNKNOWN_TEXT);
  assert.equal(formatMs(0.421), '0.42 ms');
  assert.equal(formatMs(4.21), '4.2 ms');
  assert.equal(formatMs(421.4), '421 ms');
  assert.equal(formatMs(4_210), '4.2 s');
  assert.equal(formatMs(126_000), '2.1 min');
  assert.equal(formatPercent(0.354), '35 %');
  assert.equal(formatPercent(1.7), '100 %');
  assert.equal(formatTimeUtc('2025-01-07T10:14:02.118Z'), '10:14:02Z');
  assert.equal(formatTimeUtc('2025-01-07T23:59:59+02:00'), '21:59:59Z');
  assert.equal(formatTimeUtc('not a time'), 'not a time');
  assert.equal(formatAge(NOW_MS, NOW_MS - 400), 'just now');
  assert.equal(formatAge(NOW_MS, NOW_MS + 5_000), 'just now', 'a clock ahead of ours is not "in the future"');
  assert.equal(formatAge(NOW_MS, NOW_MS - 42_000), '42 s ago');
  assert.equal(formatAge(NOW_MS, NOW_MS - 5 * 60_000), '5 min ago');
  assert.equal(formatAge(NOW_MS, NOW_MS - 3 * 3_600_000), '3 h ago');
  assert.equal(formatAge(NOW_MS, Number.NaN), UNKNOWN_TEXT);
  assert.deepEqual([0, 2.5, 25, 0.125, 1_500, 2_000_000].map(formatAxisValue), ['0', '2.5', '25', '0.125', '1.5k', '2M']);
});

test('every backend state has a word and a symbol besides its colour; drain or undrain follows the state', () => {
  for (const [state, look] of Object.entries(BACKEND_STATE_LOOK)) {
    assert.equal(look.label, state);
    assert.notEqual(look.symbol, '');
  }
  assert.deepEqual(new Set(Object.values(BACKEND_STATE_LOOK).map((look) => look.symbol)).size, 6, 'each state its own symbol');
  assert.equal(backendStateLook('quarantined').label, 'quarantined', 'a newer server state is shown as it is called');
  assert.equal(backendStateLook('toString').label, 'toString', 'inherited property names are not states');
  assert.equal(drainActionFor('healthy'), 'drain');
  assert.equal(drainActionFor('unhealthy'), 'drain');
  assert.equal(drainActionFor('draining'), 'undrain');
  assert.equal(drainActionFor('drained'), 'undrain');
});

test('a sample sums requests/s over proxies, takes the highest p99, and lists autoscaled pools', () => {
  const overview = sampleOverview(NOW_MS);
  overview.proxies.push({ id: 'proxy-2', address: '127.0.0.1:8081', requestsTotal: 10, requestsPerSecond: 8.5, p50Ms: 1, p99Ms: 90 }, { id: 'proxy-3', address: '127.0.0.1:8082', requestsTotal: 0, requestsPerSecond: 0, p50Ms: null, p99Ms: null });
  assert.deepEqual(sampleOf(overview), { atMs: NOW_MS, requestsPerSecond: 50, p99Ms: 90, instances: { web: { actual: 3, desired: 4 } } });
  overview.proxies = [];
  assert.equal(sampleOf(overview)?.p99Ms, null, 'no proxy: no latency, not zero latency');
  assert.equal(sampleOf({ ...overview, generatedAt: 'yesterday' }), null);
});

function sample(atMs: number, requestsPerSecond = 1): Sample {
  return { atMs, requestsPerSecond, p99Ms: null, instances: {} };
}

test('history keeps the window and the count, and ignores samples that do not move forward', () => {
  let history: Sample[] = [];
  for (let second = 0; second <= 400; second += 1) history = appendSample(history, sample(second * 1_000), { windowMs: 300_000, maxSamples: 1_000 });
  assert.equal(history[0]!.atMs, 100_000);
  assert.equal(history.length, 301);
  const capped = appendSample(history, sample(401_000), { windowMs: 300_000, maxSamples: 50 });
  assert.equal(capped.length, 50);
  assert.equal(capped[49]!.atMs, 401_000);
  assert.deepEqual(appendSample(capped, sample(401_000, 99), { maxSamples: 50 }), capped, 'a repeated overview adds nothing');
  assert.deepEqual(appendSample(capped, sample(1_000), { maxSamples: 50 }), capped, 'an older overview adds nothing');
  assert.deepEqual(autoscaledPools([{ ...sample(1), instances: { web: { actual: 1, desired: 1 } } }, { ...sample(2), instances: { api: { actual: 1, desired: 2 } } }]), ['api', 'web']);

  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 200 }), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 60 }), (times, windowMs, maxSamples) => {
    let kept: Sample[] = [];
    for (const atMs of times) kept = appendSample(kept, sample(atMs), { windowMs, maxSamples });
    assert.ok(kept.length <= maxSamples);
    for (let index = 1; index < kept.length; index += 1) assert.ok(kept[index]!.atMs > kept[index - 1]!.atMs, 'strictly increasing');
    const newest = kept[kept.length - 1];
    if (newest !== undefined) for (const one of kept) assert.ok(one.atMs >= newest.atMs - windowMs);
  }));
});

test('chart axes end on a round number; lines fit the box; gaps in the data stay gaps', () => {
  assert.deepEqual([0, 0.5, 1, 1.2, 2, 3, 7, 10, 11, 41.5, 99, 101, 4_999].map(niceCeiling), [1, 1, 1, 2, 2, 5, 10, 10, 20, 50, 100, 200, 5_000]);
  const box = { width: 200, height: 100, left: 40, right: 10, top: 10, bottom: 10 };
  const geometry = chartGeometry(
    [{ label: 'rps', points: [{ atMs: -5_000, value: 1_000 }, { atMs: 0, value: 0 }, { atMs: 30_000, value: 20 }, { atMs: 40_000, value: null }, { atMs: 50_000, value: 40 }, { atMs: 60_000, value: 30 }] }],
    { nowMs: 60_000, windowMs: 60_000, box },
  );
  assert.equal(geometry.yMax, 50, 'points before the window do not stretch the axis');
  assert.deepEqual(geometry.yTicks, [0, 25, 50]);
  assert.deepEqual(geometry.lines[0]!.segments, [[[40, 90], [115, 58]], [[165, 26], [190, 42]]]);

  fc.assert(fc.property(fc.array(fc.record({ atMs: fc.integer({ min: -100_000, max: 100_000 }), value: fc.option(fc.double({ min: 0, max: 1e9, noNaN: true })) }), { maxLength: 50 }), (points) => {
    const sorted = [...points].sort((a, b) => a.atMs - b.atMs);
    const result = chartGeometry([{ label: 'x', points: sorted }], { nowMs: 50_000, windowMs: 100_000, box });
    for (const segment of result.lines[0]!.segments) {
      for (const [x, y] of segment) {
        assert.ok(x >= box.left - 1e-9 && x <= box.width - box.right + 1e-9, `x ${x} inside`);
        assert.ok(y >= box.top - 1e-9 && y <= box.height - box.bottom + 1e-9, `y ${y} inside`);
      }
    }
  }));
});

test('points get a gap where samples are further apart than the allowed gap', () => {
  const points = pointsOf([sample(0, 1), sample(1_000, 2), sample(9_000, 3), sample(10_000, 4)], (one) => one.requestsPerSecond, 5_000);
  assert.deepEqual(points, [{ atMs: 0, value: 1 }, { atMs: 1_000, value: 2 }, { atMs: 1_000, value: null }, { atMs: 9_000, value: 3 }, { atMs: 10_000, value: 4 }]);
});

function event(atMs: number, summary: string, pool?: string): TimelineEntry {
  return { at: new Date(atMs).toISOString(), kind: 'decision', summary, ...(pool === undefined ? {} : { pool }) };
}

test('the timeline merges without duplicates, oldest first, bounded; filters by pool', () => {
  const a = event(1_000, 'a', 'web');
  const b = event(2_000, 'b', 'api');
  const c = event(3_000, 'c', 'web');
  assert.deepEqual(mergeEvents([a, c], [b, c, a]), [a, b, c]);
  assert.deepEqual(mergeEvents([a, b], [c], 2), [b, c], 'the oldest go first');
  const sameTime = [event(5_000, 'first'), event(5_000, 'second')];
  assert.deepEqual(mergeEvents([], sameTime), sameTime, 'equal times keep their arrival order');
  assert.notEqual(eventKey(a), eventKey({ ...a, backend: '127.0.0.1:1' }));
  assert.deepEqual(filterEvents([a, b, c], 'web'), [a, c]);
  assert.deepEqual(filterEvents([a, b, c], ''), [a, b, c]);
  assert.equal(newestEventAt([a, b]), b.at);
  assert.equal(newestEventAt([]), null);
  assert.equal(eventTone('marked-down'), 'bad');
  assert.equal(eventTone('constructor'), 'neutral');

  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.constantFrom('x', 'y')), { maxLength: 40 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.constantFrom('x', 'y')), { maxLength: 40 }), fc.integer({ min: 1, max: 30 }), (first, second, maxEvents) => {
    const once = mergeEvents(mergeEvents([], first.map(([at, text]) => event(at, text))), second.map(([at, text]) => event(at, text)), maxEvents);
    assert.ok(once.length <= maxEvents);
    assert.equal(new Set(once.map(eventKey)).size, once.length, 'no duplicates');
    for (let index = 1; index < once.length; index += 1) assert.ok(Date.parse(once[index]!.at) >= Date.parse(once[index - 1]!.at));
    assert.deepEqual(mergeEvents(once, once, maxEvents), once, 'merging again changes nothing');
  }));
});

test('the contract check passes the sample overview and names each field that is wrong', () => {
  assert.deepEqual(overviewProblems(sampleOverview(NOW_MS)), []);
  for (const one of sampleEvents(NOW_MS)) assert.deepEqual(eventProblems(one), []);
  const broken = sampleOverview(NOW_MS) as unknown as { pools: { backends: Record<string, unknown>[]; shed: Record<string, unknown> }[]; store: unknown; proxies: Record<string, unknown>[] };
  broken.pools[0]!.backends[1]!.inflight = '3';
  broken.pools[0]!.shed.rejected = { critical: 0, default: 1 };
  broken.proxies[0]!.p99Ms = undefined;
  broken.store = null;
  assert.deepEqual(overviewProblems(broken), [
    'overview.store: expected an object, got null',
    'overview.proxies[0].p99Ms: expected number or null, got undefined',
    'overview.pools[0].backends[1].inflight: expected number, got string',
    'overview.pools[0].shed.rejected.sheddable: expected number, got undefined',
  ]);
  assert.deepEqual(overviewProblems([]), ['overview: expected an object, got an array']);
  assert.deepEqual(eventProblems({ at: 'x', kind: 'k', summary: 3 }), ['event.summary: expected string, got number']);
  const many = sampleOverview(NOW_MS) as unknown as { proxies: unknown[] };
  many.proxies = Array.from({ length: 50 }, () => ({}));
  assert.equal(overviewProblems(many).length, 10, 'a long list of problems is cut');
});

test('the contract check of a session answer: authRequired and user, or what is wrong with them', () => {
  assert.deepEqual(sessionProblems({ authRequired: false, user: null }), []);
  assert.deepEqual(sessionProblems({ authRequired: true, user: 'alice' }), []);
  assert.deepEqual(sessionProblems({ authRequired: true, user: null, extra: 1 }), [], 'extra fields are fine');
  assert.deepEqual(sessionProblems({ authRequired: 'yes', user: 3 }), ['session.authRequired: expected boolean, got string', 'session.user: expected string or null, got number']);
  assert.deepEqual(sessionProblems({ authRequired: true }), ['session.user: expected string or null, got undefined'], 'user is always present, null when nobody is signed in');
  assert.deepEqual(sessionProblems('ok'), ['session: expected an object, got string']);
});

/** What the model may not touch: the page's I/O and ambient time, which the views pass in. */
const MODEL_FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bnew Date\s*\(/, 'new Date()'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\b(setTimeout|setInterval|requestAnimationFrame)\s*\(/, 'timers'],
  [/\b(document|window|fetch|EventSource|localStorage)\b/, 'the DOM or the network'],
];

function modelProblems(source: string): string[] {
  const problems: string[] = [];
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const match of code.matchAll(/\bimport\s[^;]*?from\s+['"]([^'"]+)['"]/g)) {
    if (!/^\.\/[\w-]+\.js$/.test(match[1]!)) problems.push(`imports '${match[1]}' (the model imports only its own files)`);
  }
  for (const [pattern, name] of MODEL_FORBIDDEN) if (pattern.test(code)) problems.push(`uses ${name}`);
  return problems;
}

test('the model is pure: it imports only itself and reads no clock, timer, DOM or network', () => {
  const folder = join(dirname(fileURLToPath(import.meta.url)), '../../src/ui/browser/model');
  const problems = readdirSync(folder).filter((name) => name.endsWith('.js')).flatMap((name) => modelProblems(readFileSync(join(folder, name), 'utf8')).map((problem) => `${name}: ${problem}`));
  assert.deepEqual(problems, []);
  assert.deepEqual(modelProblems("import { x } from '../dom.js';\nconst t = Date.now();\ndocument.title = 'x';"), ["imports '../dom.js' (the model imports only its own files)", 'uses Date.now()', 'uses the DOM or the network']);
  assert.deepEqual(modelProblems("import { y } from './format.js';\n/** @typedef {import('../../api-types.ts').Overview} Overview */\n// new Date() in a comment"), []);
});
