// The pool's admission core end to end, with scripted time: classification, exemption, client
// quotas, the limit and its queue, and the events that come of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseShedConfig } from '../../../src/control/shed-config.ts';
import { AdmissionCore, MAX_CLIENT_KEY_LENGTH, type AdmissionRequestInfo } from '../../../src/traffic/shed/admission-core.ts';
import { ScriptedRandom } from './scripted-random.ts';

function core(shed: unknown): AdmissionCore {
  return new AdmissionCore(parseShedConfig(shed), new ScriptedRandom([0.5]), 0);
}

function request(path: string, headers: Record<string, string> = {}, clientKey = '10.0.0.1'): AdmissionRequestInfo {
  return { method: 'GET', path, headers, clientKey };
}

test('exempt requests, client quotas and the limit, in that order', () => {
  const c = core({
    algorithm: 'fixed', fixed: { limit: 1 }, queue: { maxLength: 0 }, exempt: [{ path: '/healthz' }],
    clientRateLimit: { ratePerSecond: 1, burst: 1, maxClients: 10 },
  });
  assert.equal(c.admit(request('/healthz'), 0).decision.kind, 'exempt');
  assert.equal(c.admit(request('/a'), 0).decision.kind, 'started', 'the client spends its one token');
  assert.deepEqual(c.admit(request('/b'), 0).decision, { kind: 'rejected', priority: 'default', reason: 'client-rate-limit', retryAfterMs: 1000 });
  assert.deepEqual(c.admit(request('/c', {}, '10.0.0.2'), 0).decision, { kind: 'rejected', priority: 'default', reason: 'concurrency-limit', retryAfterMs: 1000 });
  assert.equal(c.admit(request('/healthz'), 0).decision.kind, 'exempt', 'exempt even at the limit');
  const snapshot = c.snapshot();
  assert.equal(snapshot.inflight, 1);
  assert.equal(snapshot.clients, 2);
  assert.deepEqual(c.takeEvents().map((e) => e.type), ['shedding-started'], 'one episode, started by the 503, not by the 429');
});

test('client keys come from the key header when configured, cut to a bounded length', () => {
  const c = core({ algorithm: 'none', clientRateLimit: { keyHeader: 'x-api-key', ratePerSecond: 1, burst: 1 } });
  const long = 'k'.repeat(MAX_CLIENT_KEY_LENGTH);
  assert.equal(c.admit(request('/', { 'x-api-key': `${long}-one` }, 'a'), 0).decision.kind, 'started');
  const sameBucket = c.admit(request('/', { 'x-api-key': `${long}-two` }, 'b'), 0).decision;
  assert.equal(sameBucket.kind === 'rejected' && sameBucket.reason, 'client-rate-limit', 'keys equal in their first 128 characters share a bucket');
  assert.equal(c.admit(request('/', {}, 'c'), 0).decision.kind, 'started', 'without the header: the client key (IP)');
});

test('a priority the caller decided is used as is; override off skips quotas too', () => {
  const c = core({ algorithm: 'fixed', fixed: { limit: 1 }, queue: { maxLength: 1 }, clientRateLimit: { ratePerSecond: 1, burst: 1 } });
  c.admit({ ...request('/'), priority: 'critical' }, 0);
  const queued = c.admit({ ...request('/', {}, 'other'), priority: 'sheddable' }, 0).decision;
  assert.equal(queued.kind, 'queued');
  assert.equal(queued.kind === 'queued' && queued.ticket.priority, 'sheddable');
  assert.equal(c.nextWakeMs(), 50, 'the queue deadline (maxWaitMs 50)');
  const effects = c.setOverride({ mode: 'off' }, 1);
  assert.equal(effects.started.length, 1, 'the waiter starts when shedding is turned off');
  assert.equal(c.admit(request('/'), 2).decision.kind, 'started', 'the client has no token left, but quotas are off too');
  assert.deepEqual(c.takeEvents().map((e) => e.type), ['override-changed']);
});

test('a circuit breaker refusal counts toward the shedding episode, which ends after the quiet period', () => {
  const c = core({ algorithm: 'none', quietPeriodMs: 500 });
  c.recordRejection('circuit-breaker', 'default', 100);
  assert.equal(c.snapshot().shedding, true);
  assert.equal(c.nextWakeMs(), 600);
  c.expire(600);
  assert.deepEqual(c.takeEvents().map((e) => [e.type, e.atMs]), [['shedding-started', 100], ['shedding-stopped', 600]]);
});
