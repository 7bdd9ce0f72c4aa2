// A load trace: offered requests per second over time, as points joined by straight lines (flat
// after the last point). Built-in traces come from seeded generators (traces.ts); operators replay
// their own from CSV (trace-csv.ts).

export interface TracePoint {
  atSeconds: number;
  requestsPerSecond: number;
}

export interface LoadTrace {
  name: string;
  points: TracePoint[];
}

export function traceDurationSeconds(trace: LoadTrace): number {
  return trace.points.length === 0 ? 0 : trace.points[trace.points.length - 1]!.atSeconds;
}

/** A cursor that reads the trace at increasing times in amortized constant time. */
export class TraceReader {
  private index = 0;
  private readonly points: readonly TracePoint[];

  constructor(points: readonly TracePoint[]) {
    if (points.length === 0) throw new Error('a trace needs at least one point');
    this.points = points;
  }

  rateAt(atSeconds: number): number {
    const points = this.points;
    while (this.index + 1 < points.length && points[this.index + 1]!.atSeconds <= atSeconds) this.index++;
    const from = points[this.index]!;
    const to = points[this.index + 1];
    if (to === undefined || atSeconds <= from.atSeconds) return from.requestsPerSecond;
    const span = to.atSeconds - from.atSeconds;
    if (span === 0) return to.requestsPerSecond;
    return from.requestsPerSecond + ((to.requestsPerSecond - from.requestsPerSecond) * (atSeconds - from.atSeconds)) / span;
  }
}
