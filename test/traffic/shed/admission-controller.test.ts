// The admission controller: the concurrency limit, the priority queue with its deadlines, reserved
// shares, overrides and the samples it passes on, with a fixed limit (or AIMD) and scripted time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionController, type AdmitResult, type ControllerSettings, type Ticket } from '../../../src/traffic/shed/admission-controller.ts';
import { AimdLimiter } from '../../../src/traffic/shed/aimd-limiter.ts';
import { FixedLimiter } from '../../../src/traffic/shed/fixed-limiter.ts';
import type { Limiter } from '../../../src/traffic/shed/limiter.ts';
import type { Priority } from '../../../src/traffic/shed/priority.ts';

const SETTINGS: ControllerSettings = {
  queue: { maxLength: 2, maxWaitMs: 50, order: 'adaptive-lifo', overloadedWaitMs: 5, overloadIntervalMs: 100 },
  reservedShares: { critical: 0, default: 0, sheddable: 0 },
  dropLatencyMs: 1000,
};

function controller(limit: number | Limiter, settings: Partial<ControllerSettings> = {}): AdmissionController {
  return new AdmissionController(typeof limit === 'number' ? new FixedLimiter(limit) : limit, { ...SETTINGS, ...settings });
}

function ticketOf(result: AdmitResult): Ticket {
  assert.notEqual(result.outcome, 'rejected');
  return (result as { ticket: Ticket }).ticket;
}

function admit(c: AdmissionController, priority: Priority, nowMs: number): AdmitResult {
  return c.admit(priority, nowMs);
}

test('requests start under the limit, wait in the queue above it, and are refused when the queue is full', () => {
  const c = controller(2);
  const a = admit(c, 'default', 0);
  const b = admit(c, 'default', 0);
  assert.equal(a.outcome, 'started');
  assert.equal(b.outcome, 'started');
  const waiting1 = admit(c, 'default', 1);
  const waiting2 = admit(c, 'default', 2);
  assert.equal(waiting1.outcome, 'queued');
  assert.equal(waiting2.outcome, 'queued');
  const refused = admit(c, 'default', 3);
  assert.deepEqual([refused.outcome, refused.outcome === 'rejected' && refused.reason], ['rejected', 'queue-full']);
  // A release hands the slot to the oldest waiter (FIFO: the queue is not standing yet).
  const effects = c.release(ticketOf(a), { dropped: false }, 10);
  assert.deepEqual(effects.started.map((t) => t.id), [ticketOf(waiting1).id]);
  assert.equal(ticketOf(waiting1).startedMs, 10);
  assert.equal(c.inflight, 2);
  assert.equal(c.queueLength, 1);
  assert.equal(ticketOf(b).state, 'running');
});

test('without a queue, a request over the limit is refused at once', () => {
  const c = controller(1, { queue: { ...SETTINGS.queue, maxLength: 0 } });
  admit(c, 'critical', 0);
  const refused = admit(c, 'critical', 0);
  assert.equal(refused.outcome === 'rejected' && refused.reason, 'concurrency-limit');
});

test('a waiter whose deadline (maxWaitMs) comes is refused with queue-timeout', () => {
  const c = controller(1);
  admit(c, 'default', 0);
  const waiting = ticketOf(admit(c, 'default', 10));
  assert.equal(c.nextDeadlineMs(), 60, 'enqueued at 10, may wait 50');
  assert.deepEqual(c.expire(59).rejected, []);
  const effects = c.expire(60);
  assert.deepEqual(effects.rejected.map((r) => [r.ticket.id, r.reason]), [[waiting.id, 'queue-timeout']]);
  assert.equal(waiting.state, 'finished');
  assert.equal(c.queueLength, 0);
});

test('a burst is absorbed: requests over the limit get the full maxWaitMs', () => {
  const c = controller(10, { queue: { ...SETTINGS.queue, maxLength: 20 } });
  for (let i = 0; i < 20; i++) admit(c, 'default', 0);
  assert.equal(c.inflight, 10);
  assert.equal(c.queueLength, 10);
  assert.equal(c.nextDeadlineMs(), 50);
});

/**
 * One request per 10 ms from 0 to `untilMs` against one slot freed every 20 ms: demand twice the
 * service. Requests wait from t = 10 on; the occupancy (time constant 100 / ln 10 ms) reaches 90 %
 * at 110, so from 110 on the class is overloaded. Returns the request running at `untilMs`.
 */
function overload(c: AdmissionController, untilMs: number, priority: Priority = 'default'): Ticket {
  let running = ticketOf(admit(c, priority, 0));
  for (let t = 10; t <= untilMs; t += 10) {
    if (t % 20 === 0) running = c.release(running, { dropped: false }, t).started[0] ?? running;
    admit(c, priority, t);
  }
  return running;
}

test('a standing queue with demand beyond service gets short deadlines (CoDel) and LIFO order; it recovers when demand falls', () => {
  const c = controller(1, { queue: { ...SETTINGS.queue, maxLength: 100, maxWaitMs: 1000 } });
  const running = overload(c, 120);
  // Requests of 10–100 got 1,000 ms; 110 got 5 ms and expired at 115; 120 got 5 ms.
  assert.equal(c.nextDeadlineMs(), 125);
  // LIFO: the slot freed at 121 goes to the newest waiter (120), not to the oldest.
  const next = c.release(running, { dropped: false }, 121).started;
  assert.deepEqual(next.map((t) => t.arrivedMs), [120]);
  // Demand stops; slots keep freeing every 20 ms. Once arrivals fall below starts, deadlines are long again.
  let current = next[0]!;
  for (let t = 140; t <= 400; t += 20) current = c.release(current, { dropped: false }, t).started[0] ?? current;
  admit(c, 'default', 400); // takes the slot if it is free
  const late = ticketOf(admit(c, 'default', 400));
  assert.equal(late.state, 'queued');
  c.expire(1399);
  assert.equal(late.state, 'queued', 'a long deadline again: 400 + 1,000');
});

test('after an overload, light traffic (every request starts at once) ends it: the next burst gets maxWaitMs again', () => {
  const c = controller(2, { queue: { ...SETTINGS.queue, maxLength: 100, maxWaitMs: 1000 } });
  // Overload: limit 2, two requests every 10 ms, a slot freed every 10 ms.
  const running: Ticket[] = [];
  const arrive = (t: number) => {
    const result = admit(c, 'default', t);
    running.push(...result.effects.started);
    if (result.outcome === 'started') running.push(result.ticket);
  };
  arrive(0);
  arrive(0);
  for (let t = 10; t <= 300; t += 10) {
    const done = running.shift();
    if (done !== undefined) running.push(...c.release(done, { dropped: false }, t).started);
    arrive(t);
    arrive(t);
  }
  assert.equal(c.nextDeadlineMs(), 305, 'overloaded: 5 ms');
  c.expire(2000); // the waiters expire
  while (running.length > 0) c.release(running.shift()!, { dropped: false }, 2000);
  assert.equal(c.inflight, 0);
  // Light traffic: one request every 30 ms, done 20 ms later. Arrivals equal starts.
  for (let t = 2000; t < 3000; t += 30) c.release(ticketOf(admit(c, 'default', t)), { dropped: false }, t + 20);
  // A burst of 4 at a limit of 2: the 2 that wait get the full 1,000 ms.
  for (let i = 0; i < 4; i++) admit(c, 'default', 3000);
  assert.equal(c.queueLength, 2);
  assert.equal(c.nextDeadlineMs(), 4000);
});

test('in FIFO order an overloaded class still gets the short deadline but serves the oldest first', () => {
  const c = controller(1, { queue: { ...SETTINGS.queue, maxLength: 100, maxWaitMs: 1000, order: 'fifo' } });
  const running = overload(c, 120);
  assert.equal(c.nextDeadlineMs(), 125);
  // Slots at 20, 40, ..., 120 went to the requests of 10, 20, ..., 60: the oldest now waiting is 70.
  assert.deepEqual(c.release(running, { dropped: false }, 121).started.map((t) => t.arrivedMs), [70]);
});

test('overload is judged per class: a critical request behind an overloaded sheddable queue keeps maxWaitMs', () => {
  const c = controller(1, { queue: { ...SETTINGS.queue, maxLength: 100, maxWaitMs: 1000 } });
  overload(c, 150, 'sheddable');
  const critical = ticketOf(admit(c, 'critical', 155));
  const sheddable = ticketOf(admit(c, 'sheddable', 155));
  c.expire(160);
  assert.equal(sheddable.state, 'finished', 'the sheddable class is overloaded: 5 ms');
  assert.equal(critical.state, 'queued', 'no critical request waited before: the full 1,000 ms');
});

test('a free slot goes to the most important waiter; a full queue displaces the least important', () => {
  const c = controller(1);
  const running = ticketOf(admit(c, 'sheddable', 0));
  const sheddable = ticketOf(admit(c, 'sheddable', 1));
  const normal = ticketOf(admit(c, 'default', 2));
  // The queue (2) is full. A critical request displaces the oldest waiter of the lowest class.
  const critical = admit(c, 'critical', 3);
  assert.equal(critical.outcome, 'queued');
  assert.deepEqual(critical.effects.rejected.map((r) => [r.ticket.id, r.reason]), [[sheddable.id, 'displaced']]);
  // Another sheddable request finds nothing less important to displace.
  const refused = admit(c, 'sheddable', 4);
  assert.equal(refused.outcome === 'rejected' && refused.reason, 'queue-full');
  // The slot goes to critical, though default waited longer.
  assert.deepEqual(c.release(running, { dropped: false }, 5).started.map((t) => t.id), [ticketOf(critical).id]);
  assert.equal(normal.state, 'queued');
});

test('reserved shares: lower classes cannot take the unused reserve of higher ones, higher classes borrow everything', () => {
  // limit 10; critical reserves floor(0.1 × 10) = 1 slot, default floor(0.2 × 10) = 2 slots.
  const c = controller(10, { reservedShares: { critical: 0.1, default: 0.2, sheddable: 0 }, queue: { ...SETTINGS.queue, maxLength: 0 } });
  const started = (priority: Priority) => admit(c, priority, 0).outcome === 'started';
  for (let i = 0; i < 7; i++) assert.ok(started('sheddable'), `sheddable ${i + 1} of 7`);
  assert.equal(started('sheddable'), false, 'the 8th sheddable would take reserved slots: 7 + 1 + 2 = 10');
  assert.ok(started('default'), '7 in flight + 1 held for critical < 10');
  assert.ok(started('default'), '8 + 1 < 10');
  assert.equal(started('default'), false, '9 in flight + 1 held for critical = 10');
  assert.ok(started('critical'), 'critical may use the last slot');
  assert.equal(started('critical'), false, 'the global limit is reached');
  assert.equal(c.inflight, 10);
});

test('reserved shares: a class alone can borrow all unreserved capacity and its own reserve', () => {
  const c = controller(10, { reservedShares: { critical: 0.1, default: 0.2, sheddable: 0 }, queue: { ...SETTINGS.queue, maxLength: 0 } });
  let defaults = 0;
  while (admit(c, 'default', 0).outcome === 'started') defaults += 1;
  assert.equal(defaults, 9, 'all but the one slot critical reserves');
});

test('override off admits everything and starts every waiter; fixed pins the limit; configured restores it', () => {
  const c = controller(1);
  admit(c, 'default', 0);
  const waiting = ticketOf(admit(c, 'default', 0));
  const effects = c.setOverride({ mode: 'off' }, 1);
  assert.deepEqual(effects.started.map((t) => t.id), [waiting.id]);
  for (let i = 0; i < 50; i++) assert.equal(admit(c, 'sheddable', 2).outcome, 'started');
  assert.equal(c.limit, Number.POSITIVE_INFINITY);
  c.setOverride({ mode: 'fixed', limit: 60 }, 3);
  assert.equal(c.limit, 60);
  assert.equal(admit(c, 'default', 3).outcome, 'started', '52 in flight < 60');
  c.setOverride({ mode: 'configured' }, 4);
  assert.equal(c.limit, 1);
  assert.equal(admit(c, 'default', 4).outcome, 'queued');
  assert.throws(() => c.setOverride({ mode: 'fixed', limit: 0 }, 5), /whole number >= 1/);
});

test('samples reach the limiter: RTT from the start (after the queue), slow successes count as drops, ignored outcomes do not count', () => {
  const aimd = new AimdLimiter({ minLimit: 1, maxLimit: 100, initialLimit: 10, backoffRatio: 0.5 });
  const c = controller(aimd);
  const t1 = ticketOf(admit(c, 'default', 0));
  c.release(t1, { dropped: false }, 5); // inflight at start 1: 1 × 2 < 10, no increase
  assert.equal(aimd.limit, 10);
  const t2 = ticketOf(admit(c, 'default', 10));
  c.release(t2, { dropped: false }, 1010); // 1,000 ms >= dropLatencyMs: a drop, 10 × 0.5
  assert.equal(aimd.limit, 5);
  const t3 = ticketOf(admit(c, 'default', 2000));
  c.release(t3, { rttMs: 999, dropped: false }, 5000); // the caller's RTT (999) wins over the clock's (3000)
  assert.equal(aimd.limit, 5);
  const t4 = ticketOf(admit(c, 'default', 6000));
  c.release(t4, { ignored: true }, 9000);
  assert.equal(aimd.limit, 5, 'an ignored request is no sample');
  c.release(t4, { dropped: true }, 9001);
  assert.equal(aimd.limit, 5, 'a second release of the same ticket changes nothing');
  assert.equal(c.inflight, 0);
});

test('a cancelled waiter leaves the queue; cancelling twice or a running request is a no-op', () => {
  const c = controller(1);
  const running = ticketOf(admit(c, 'default', 0));
  const waiting = ticketOf(admit(c, 'default', 0));
  assert.ok(c.cancel(waiting, 0));
  assert.equal(c.queueLength, 0);
  assert.equal(c.cancel(waiting, 0), false);
  assert.equal(c.cancel(running, 0), false);
  assert.deepEqual(c.release(running, { dropped: false }, 1).started, []);
});

test('drain refuses every waiter with the given reason', () => {
  const c = controller(1);
  admit(c, 'default', 0);
  admit(c, 'critical', 0);
  admit(c, 'sheddable', 0);
  assert.deepEqual(c.drain('closing', 0).rejected.map((r) => r.reason), ['closing', 'closing']);
  assert.equal(c.queueLength, 0);
});
