// A checker that cannot fail proves nothing. Each deliberate defect in the core must be caught by the
// simulator's external checks (invariants and linearizability, never the core's own assertions)
// within 100 seeds of 5 members and 5,000 ticks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INJECTABLE_BUGS } from '../../src/consensus/bugs.ts';
import { RaftBugError } from '../../src/consensus/types.ts';
import { FAULT_KINDS } from '../../src/sim/faults.ts';
import { runSimulation } from '../../src/sim/simulation.ts';

export const BUG_SEED_BUDGET = 100;

for (const bug of INJECTABLE_BUGS) {
  test(`injected bug '${bug}' is caught within ${BUG_SEED_BUDGET} seeds`, (t) => {
    for (let seed = 1; seed <= BUG_SEED_BUDGET; seed++) {
      let report;
      try {
        report = runSimulation({ seed, members: 5, ticks: 5_000, faults: [...FAULT_KINDS], bugs: [bug] });
      } catch (error) {
        if (error instanceof RaftBugError) assert.fail(`seed ${seed}: caught by an assertion inside the core, not by the checks: ${error.message}`);
        throw error;
      }
      if (report.violations.length > 0) {
        t.diagnostic(`${bug}: caught at seed ${seed} by ${report.violations[0]!.property}`);
        return;
      }
    }
    assert.fail(`bug '${bug}' was not caught in ${BUG_SEED_BUDGET} seeds`);
  });
}
