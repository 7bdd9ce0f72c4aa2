// Runs every scripted scenario in testdata/ as one test: the transcript the harness produces must
// match the file exactly. See interaction/harness.ts for the commands and testdata/README.md for
// how to rewrite the files after an intended behaviour change.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runScenarioFile } from './interaction/harness.ts';

const testdataDir = fileURLToPath(new URL('./testdata/', import.meta.url));
const scenarioFiles = readdirSync(testdataDir).filter((name) => name.endsWith('.txt')).sort();

test('the testdata directory holds scenarios', () => {
  assert.ok(scenarioFiles.length > 0, `no scenario files in ${testdataDir}`);
});

for (const name of scenarioFiles) {
  test(`scenario ${name}`, () => {
    const { expected, actual } = runScenarioFile(join(testdataDir, name));
    assert.equal(actual, expected, `${name}: the transcript differs from the file (set CONCORD_REWRITE=1 to rewrite it after checking the change is intended)`);
  });
}
