// Per-client token buckets with their bounded table, and per-backend circuit breaker counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientRateLimiter } from '../../../src/traffic/shed/client-rate-limiter.ts';
import { CircuitBreakers } from '../../../src/traffic/shed/circuit-breakers.ts';

test('a token bucket allows a burst, refills at the rate, and says when to retry', () => {
  const limiter = new ClientRateLimiter({ ratePerSecond: 10, burst: 2, maxClients: 100 });
  assert.deepEqual(limiter.take('a', 0), { allowed: true }, '2 tokens → 1');
  assert.deepEqual(limiter.take('a', 0), { allowed: true }, '1 → 0');
  assert.deepEqual(limiter.take('a', 0), { allowed: false, retryAfterMs: 100 }, 'one token takes 1,000 / 10 = 100 ms');
  assert.deepEqual(limiter.take('a', 50), { allowed: false, retryAfterMs: 50 }, 'half a token after 50 ms: 50 ms to go');
  assert.deepEqual(limiter.take('a', 100), { allowed: true }, 'a whole token after 100 ms');
  assert.deepEqual(limiter.take('b', 100), { allowed: true }, 'another client has its own bucket');
  assert.deepEqual(limiter.take('a', 10_000), { allowed: true }, 'refills stop at the burst: 2 tokens');
  assert.deepEqual(limiter.take('a', 10_000), { allowed: true });
  assert.equal(limiter.take('a', 10_000).allowed, false);
});

test('the bucket table stays within maxClients by forgetting the least recently seen client', () => {
  const limiter = new ClientRateLimiter({ ratePerSecond: 1, burst: 1, maxClients: 2 });
  limiter.take('a', 0);
  limiter.take('b', 0);
  assert.equal(limiter.take('a', 0).allowed, false, 'touches a: b is now the least recent');
  limiter.take('c', 0); // a third client: b is forgotten
  assert.equal(limiter.clientCount, 2);
  assert.equal(limiter.evictions, 1);
  assert.equal(limiter.take('a', 0).allowed, false, 'a was kept, with its empty bucket');
  assert.equal(limiter.take('b', 0).allowed, true, 'b comes back with a full bucket (the documented cost of the bound)');
});

test('circuit breakers refuse at each maximum, per backend, and forget idle backends', () => {
  const breakers = new CircuitBreakers({ maxConnections: 1, maxPendingRequests: 2, maxRequests: 2 });
  assert.ok(breakers.tryAcquire('10.0.0.1:80', 'requests'));
  assert.ok(breakers.tryAcquire('10.0.0.1:80', 'requests'));
  assert.equal(breakers.tryAcquire('10.0.0.1:80', 'requests'), false);
  assert.ok(breakers.tryAcquire('10.0.0.2:80', 'requests'), 'another backend has its own counters');
  assert.ok(breakers.tryAcquire('10.0.0.1:80', 'connections'));
  assert.equal(breakers.tryAcquire('10.0.0.1:80', 'connections'), false);
  assert.ok(breakers.tryAcquire('10.0.0.1:80', 'pendingRequests'));
  breakers.release('10.0.0.1:80', 'requests');
  assert.ok(breakers.tryAcquire('10.0.0.1:80', 'requests'));
  assert.equal(breakers.countOf('10.0.0.1:80', 'requests'), 2);
  breakers.release('10.0.0.2:80', 'requests');
  assert.equal(breakers.trackedBackends, 1, 'a backend with nothing in flight is forgotten');
  assert.throws(() => breakers.release('10.0.0.2:80', 'requests'), /without an acquire/);
});
