// Shared by the clean-seeds test files: with every bug off, 1,000 seeds (5 members, 5,000 ticks,
// every fault) must be safe, live and linearizable. The range is split over two test files so the
// test runner can use both cores.

import assert from 'node:assert/strict';
import { FAULT_KINDS } from '../../src/sim/faults.ts';
import { runSimulation } from '../../src/sim/simulation.ts';

export const CLEAN_SEEDS_TOTAL = 1_000;

export function assertSeedsClean(firstSeed: number, count: number): void {
  const failures: string[] = [];
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const report = runSimulation({ seed, members: 5, ticks: 5_000, faults: [...FAULT_KINDS], bugs: [] });
    for (const v of report.violations) failures.push(`seed ${seed}: ${v.property} at tick ${v.tick}: ${v.detail.split('\n')[0]}`);
    if (report.linearizability === 'unknown') failures.push(`seed ${seed}: the linearizability check ran out of search budget`);
  }
  assert.deepEqual(failures, []);
}
