// Properties of the admission controller under random sequences of arrivals, releases and expiries:
// the limit and the queue bound hold, every request ends exactly once, no waiter could have taken
// a free slot, and a critical request is never refused while a less important one waits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AdmissionController, type Ticket } from '../../../src/traffic/shed/admission-controller.ts';
import { FixedLimiter } from '../../../src/traffic/shed/fixed-limiter.ts';
import { mayStart } from '../../../src/traffic/shed/priority-shares.ts';
import { PRIORITIES, perPriority, type Priority } from '../../../src/traffic/shed/priority.ts';

type Step =
  | { kind: 'arrive'; priority: Priority; afterMs: number }
  | { kind: 'release'; index: number; afterMs: number }
  | { kind: 'expire'; afterMs: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('arrive' as const), priority: fc.constantFrom(...PRIORITIES), afterMs: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('release' as const), index: fc.nat(), afterMs: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('expire' as const), afterMs: fc.integer({ min: 0, max: 60 }) }),
);

test('limit, queue bound, exactly-once endings, drained queue and priority order hold for any sequence', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 6 }),
      fc.record({ critical: fc.constantFrom(0, 0.1, 0.3), default: fc.constantFrom(0, 0.2, 0.4), sheddable: fc.constant(0) }),
      fc.constantFrom('adaptive-lifo' as const, 'fifo' as const),
      fc.array(step, { maxLength: 200 }),
      (limit, maxLength, reservedShares, order, steps) => {
        const c = new AdmissionController(new FixedLimiter(limit), {
          queue: { maxLength, maxWaitMs: 30, order, overloadedWaitMs: 5, overloadIntervalMs: 40 },
          reservedShares,
          dropLatencyMs: 1000,
        });
        const endings = new Map<number, number>();
        const end = (ticket: Ticket) => endings.set(ticket.id, (endings.get(ticket.id) ?? 0) + 1);
        const running: Ticket[] = [];
        const onEffects = (effects: { started: Ticket[]; rejected: { ticket: Ticket }[] }) => {
          running.push(...effects.started);
          for (const { ticket } of effects.rejected) end(ticket);
        };
        let nowMs = 0;
        for (const s of steps) {
          nowMs += s.afterMs;
          if (s.kind === 'arrive') {
            const lowerWaiting = PRIORITIES.some((p) => PRIORITIES.indexOf(p) > PRIORITIES.indexOf(s.priority) && c.queueLengthOf(p) > 0);
            const result = c.admit(s.priority, nowMs);
            onEffects(result.effects);
            if (result.outcome === 'started') running.push(result.ticket);
            if (result.outcome === 'rejected' && maxLength > 0) {
              assert.ok(!lowerWaiting || s.priority === 'sheddable', `a ${s.priority} request was refused while a less important one waited`);
            }
          } else if (s.kind === 'release' && running.length > 0) {
            const [ticket] = running.splice(s.index % running.length, 1);
            end(ticket!);
            onEffects(c.release(ticket!, { dropped: false }, nowMs));
          } else {
            onEffects(c.expire(nowMs));
          }
          assert.ok(c.inflight <= limit, `in flight ${c.inflight} > limit ${limit}`);
          assert.equal(c.inflight, running.length);
          assert.ok(c.queueLength <= maxLength);
          const inflight = perPriority((p) => c.inflightOf(p));
          for (const p of PRIORITIES) {
            if (c.queueLengthOf(p) > 0) assert.equal(mayStart(p, inflight, limit, reservedShares), false, `a ${p} waiter could have started`);
          }
        }
        for (const count of endings.values()) assert.equal(count, 1, 'a request ended twice');
      },
    ),
    { numRuns: 300 },
  );
});
