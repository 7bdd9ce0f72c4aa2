// A smoke run of the overload benchmark's real parts (backend, front with admission, open-loop
// generator), small and short: every request is answered, refusals never reach the backend, and the
// backend never holds more than the front's fixed limit. No figure is asserted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../../bench/overload-backend.ts';
import { startFront } from '../../bench/overload-front.ts';
import { runLoad, STATUS_ERROR, STATUS_NOT_SENT, STATUS_TIMEOUT } from '../../bench/overload-load.ts';
import { SHED_REASONS } from '../../src/traffic/shed/shed-reason.ts';

test('backend, front and generator: a fixed limit of 5 in front of 4 workers, offered 3× their capacity', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-overload-smoke-'));
  // 4 workers: the front warms its pool with 4 concurrent requests, which must not queue either.
  const backend = await startBackend({ workers: 4, serviceMs: 10 }, join(dir, 'backend.log'));
  try {
    const front = await startFront({
      shed: { algorithm: 'fixed', fixed: { limit: 5 }, queue: { maxLength: 0 } }, backendUrl: backend.url, upstreamTimeoutMs: 5000, upstreamConnections: 16,
    }, join(dir, 'front.log'));
    try {
      const url = new URL(front.url);
      const result = await runLoad({
        host: url.hostname, port: Number(url.port), path: '/work',
        phases: [{ rateRps: 1200, durationMs: 200, measured: false }, { rateRps: 1200, durationMs: 600, measured: true }],
        mix: { critical: 0.05, sheddable: 0.4 }, seed: 7, requestTimeoutMs: 10_000, maxConnections: 500, maxRequests: 3000,
      }, join(dir, 'load.log'));
      const { status, shed } = result.requests;
      assert.ok(status.length > 0, 'requests were scheduled in the measured window');
      for (const bad of [STATUS_NOT_SENT, STATUS_TIMEOUT, STATUS_ERROR]) assert.equal(status.filter((s) => s === bad).length, 0, `status ${bad}`);
      const refused = status.filter((s, i) => s === 503 && shed[i] === SHED_REASONS.indexOf('concurrency-limit') + 1).length;
      const served = status.filter((s, i) => s === 200 && shed[i] === 0).length;
      assert.equal(refused + served, status.length, 'every answer is a 200 from the backend or a 503 from admission');
      assert.ok(refused > 0 && served > 0, `both kinds of answers (${served} served, ${refused} refused)`);
      const stats = await backend.stats();
      assert.ok(stats.timerLatenessP99Ms >= 0 && stats.served > 0);
      assert.ok(stats.maxQueueLength <= 1, `the backend queued ${stats.maxQueueLength}, but the limit of 5 leaves at most 1 waiting for 4 workers`);
      const state = await front.state();
      assert.equal(state.snapshot.limit, 5);
      assert.equal(state.events[0]?.type, 'shedding-started');
    } finally {
      await front.stop();
    }
  } finally {
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
