// A discrete-event simulation of admission control in front of a capacity-limited backend, in
// virtual time: the benchmark's setup (workers with a fixed service time behind a FIFO queue, Poisson
// arrivals, 5 % critical and 40 % sheddable requests) without a machine's noise. Every request goes
// through the real AdmissionController and limiter; the simulated front has no timers, so queue
// deadlines are processed as events of their own. Deterministic: a seed gives the same figures on
// any machine, which the real benchmark on a shared machine cannot. Used by
// test/traffic/shed/overload-simulation.test.ts; `node bench/overload-simulation.ts` prints the table.

import { AdmissionController, type Ticket } from '../src/traffic/shed/admission-controller.ts';
import { createLimiter } from '../src/traffic/shed/limiter-factory.ts';
import type { Priority } from '../src/traffic/shed/priority.ts';
import type { ShedSettings } from '../src/traffic/shed/shed-settings.ts';
import { pathToFileURL } from 'node:url';
import { SeededRandom } from '../src/random/seeded-random.ts';

export interface SimulationSpec {
  settings: ShedSettings;
  workers: number;
  serviceMs: number;
  /** Offered load as a multiple of capacity. */
  load: number;
  durationMs: number;
  /** Requests arriving before this are not counted. */
  warmupMs: number;
  sloMs: number;
  seed: number;
}

export interface SimulationResult {
  goodputFraction: number;
  admittedP99Ms: number;
  criticalSuccess: number;
  shedFraction: number;
  limits: number[];
  maxBackendQueue: number;
}

interface Request {
  priority: Priority;
  arrivedMs: number;
  ticket?: Ticket;
  doneMs?: number;
  shed: boolean;
}

type Event = { atMs: number; kind: 'arrival' | 'finish' | 'deadline' | 'sample'; request?: Request };

/** A binary heap of events by time (ties in insertion order). */
class EventQueue {
  private readonly heap: (Event & { seq: number })[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(event: Event): void {
    const heap = this.heap;
    heap.push({ ...event, seq: this.seq++ });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  pop(): Event {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }

  private before(a: Event & { seq: number }, b: Event & { seq: number }): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }
}

export function simulate(spec: SimulationSpec): SimulationResult {
  const random = new SeededRandom(spec.seed);
  const controller = new AdmissionController(createLimiter(spec.settings, random.fork(), 0), {
    queue: spec.settings.queue, reservedShares: spec.settings.priority.reservedShare, dropLatencyMs: spec.settings.dropLatencyMs,
  });
  const capacityRps = (spec.workers * 1000) / spec.serviceMs;
  const events = new EventQueue();
  const requests: Request[] = [];
  const backendQueue: Request[] = [];
  let busyWorkers = 0;
  let maxBackendQueue = 0;
  const limits: number[] = [];
  let nextLimitSampleMs = 0;

  const count = Math.round((spec.load * capacityRps * spec.durationMs) / 1000);
  for (let i = 0; i < count; i++) {
    const draw = random.nextFloat();
    const priority: Priority = draw < 0.05 ? 'critical' : draw < 0.45 ? 'sheddable' : 'default';
    const request: Request = { priority, arrivedMs: random.nextFloat() * spec.durationMs, shed: false };
    requests.push(request);
    events.push({ atMs: request.arrivedMs, kind: 'arrival', request });
  }

  const startService = (nowMs: number) => {
    while (busyWorkers < spec.workers && backendQueue.length > 0) {
      busyWorkers += 1;
      events.push({ atMs: nowMs + spec.serviceMs, kind: 'finish', request: backendQueue.shift()! });
    }
  };
  const forward = (request: Request, nowMs: number) => {
    backendQueue.push(request);
    maxBackendQueue = Math.max(maxBackendQueue, backendQueue.length - (spec.workers - busyWorkers));
    startService(nowMs);
  };
  const byTicket = new Map<number, Request>();
  /** Like the shell's one timer: a deadline event only when it is earlier than the one pending. */
  let pendingDeadlineMs = Number.POSITIVE_INFINITY;
  const apply = (effects: { started: Ticket[]; rejected: { ticket: Ticket }[] }, nowMs: number) => {
    for (const ticket of effects.started) forward(byTicket.get(ticket.id)!, nowMs);
    for (const { ticket } of effects.rejected) byTicket.get(ticket.id)!.shed = true;
    const deadline = controller.nextDeadlineMs();
    if (deadline < pendingDeadlineMs) {
      pendingDeadlineMs = deadline;
      events.push({ atMs: deadline, kind: 'deadline' });
    }
  };

  while (events.size > 0) {
    const event = events.pop();
    const nowMs = event.atMs;
    if (nowMs >= nextLimitSampleMs) {
      limits.push(controller.limit);
      nextLimitSampleMs += 100;
    }
    if (event.kind === 'arrival') {
      const request = event.request!;
      const result = controller.admit(request.priority, nowMs);
      if (result.outcome === 'rejected') request.shed = true;
      else {
        request.ticket = result.ticket;
        byTicket.set(result.ticket.id, request);
        if (result.outcome === 'started') forward(request, nowMs);
      }
      apply(result.effects, nowMs);
    } else if (event.kind === 'finish') {
      busyWorkers -= 1;
      const request = event.request!;
      request.doneMs = nowMs;
      startService(nowMs);
      apply(controller.release(request.ticket!, { dropped: false }, nowMs), nowMs);
    } else {
      if (nowMs === pendingDeadlineMs) pendingDeadlineMs = Number.POSITIVE_INFINITY;
      apply(controller.expire(nowMs), nowMs);
    }
  }

  const counted = requests.filter((r) => r.arrivedMs >= spec.warmupMs);
  const admitted = counted.filter((r) => !r.shed).map((r) => r.doneMs! - r.arrivedMs).sort((a, b) => a - b);
  const good = (r: Request) => !r.shed && r.doneMs! - r.arrivedMs <= spec.sloMs;
  const critical = counted.filter((r) => r.priority === 'critical');
  return {
    goodputFraction: counted.filter(good).length / ((spec.durationMs - spec.warmupMs) / 1000) / capacityRps,
    admittedP99Ms: admitted.length === 0 ? Number.NaN : admitted[Math.ceil(0.99 * admitted.length) - 1]!,
    criticalSuccess: critical.filter(good).length / critical.length,
    shedFraction: counted.filter((r) => r.shed).length / counted.length,
    limits,
    maxBackendQueue,
  };
}

/** `node bench/overload-simulation.ts`: the benchmark's rows in virtual time (5 seeds each, medians). */
async function printTable(): Promise<void> {
  const { parseShedConfig } = await import('../src/control/shed-config.ts');
  const section = { minLimit: 4, maxLimit: 1000, queue: { maxLength: 100, maxWaitMs: 50 }, dropLatencyMs: 100 };
  const limiters: [string, object][] = [
    ['none', { algorithm: 'none' }], ['fixed', { algorithm: 'fixed', fixed: { limit: 10 } }], ['aimd', { algorithm: 'aimd' }],
    ['vegas', { algorithm: 'vegas' }], ['gradient', { algorithm: 'gradient' }], ['gradient p50', { algorithm: 'gradient', gradient: { percentile: 50 } }],
  ];
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  process.stdout.write('limiter        load  goodput  p99 ms  critical  shed   limit (median of 100 ms samples)\n');
  for (const [name, shed] of limiters) {
    for (const load of [0.5, 1, 1.4, 3, 10]) {
      const runs = [1, 2, 3, 4, 5].map((seed) => simulate({
        settings: parseShedConfig({ ...section, ...shed }), workers: 8, serviceMs: 20, load, durationMs: 8000, warmupMs: 2000, sloMs: 100, seed,
      }));
      const m = (pick: (r: SimulationResult) => number) => median(runs.map(pick));
      process.stdout.write(`${name.padEnd(13)} ${String(load).padStart(4)}×  ${m((r) => r.goodputFraction).toFixed(3)}  ${m((r) => r.admittedP99Ms).toFixed(1).padStart(6)}` +
        `  ${m((r) => r.criticalSuccess).toFixed(4)}  ${m((r) => r.shedFraction).toFixed(3)}  ${m((r) => median(r.limits.slice(20)))}\n`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await printTable();
