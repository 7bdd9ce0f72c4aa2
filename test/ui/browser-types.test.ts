// The page is plain JavaScript served as it is, with JSDoc types checked against the DOM library
// and the API contract (src/ui/api-types.ts) by its own tsconfig: the project's type check has no
// DOM library, so this test runs the page's. A renamed contract field fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function typeCheck(project: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test("the page's JavaScript type-checks against the DOM and the API contract", () => {
  const { status, output } = typeCheck(join(root, 'src/ui/browser/tsconfig.json'));
  assert.equal(output.trim(), '');
  assert.equal(status, 0);
});

/** Type-checks one file of JavaScript with the page's settings; returns the checker's output. */
function typeCheckSnippet(source: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'concord-ui-types-'));
  try {
    writeFileSync(join(dir, 'wrong.js'), source);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(root, 'src/ui/browser/tsconfig.json'), include: ['wrong.js'] }));
    return typeCheck(join(dir, 'tsconfig.json'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const contract = join(root, 'src/ui/api-types.ts');

test('the check catches a field the contract does not have', () => {
  const { status, output } = typeCheckSnippet(`/** @param {import('${contract}').Overview} overview */\nexport const count = (overview) => overview.pool.length;\n`);
  assert.notEqual(status, 0);
  assert.match(output, /Property 'pool' does not exist on type 'Overview'/);
});

test("the check covers the identities: a session's user is a string or null, a login sends user and password", () => {
  const { status, output } = typeCheckSnippet([
    `/** @param {import('${contract}').SessionInfo} session */`,
    'export const name = (session) => session.user.toUpperCase() + session.username;',
    `/** @type {import('${contract}').LoginRequestBody} */`,
    "export const body = { user: 'alice', pasword: 'x' };",
    '',
  ].join('\n'));
  assert.notEqual(status, 0);
  assert.match(output, /'session\.user' is possibly 'null'/);
  assert.match(output, /Property 'username' does not exist on type 'SessionInfo'/);
  assert.match(output, /'pasword' does not exist in type 'LoginRequestBody'/);
});
