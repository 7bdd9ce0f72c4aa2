// One catalog of error codes (docs/errors.md): every CONCORD_E_ code used in the source must be
// documented there, so a user who sees a code can look up what it means and what to do.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function sourceFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

export function codesIn(text: string): Set<string> {
  return new Set(text.match(/CONCORD_E_[A-Z0-9_]+/g) ?? []);
}

test('every error code in the source is documented in docs/errors.md', () => {
  const documented = codesIn(readFileSync(join(root, 'docs/errors.md'), 'utf8'));
  const missing = new Set<string>();
  for (const file of sourceFiles(join(root, 'src'))) {
    for (const code of codesIn(readFileSync(file, 'utf8'))) if (!documented.has(code)) missing.add(code);
  }
  assert.deepEqual([...missing].sort(), []);
});

test('the catalog check sees codes, and only codes', () => {
  assert.deepEqual([...codesIn("throw new KvError('CONCORD_E_KV_EMPTY_KEY') // CONCORD_E_X2")], ['CONCORD_E_KV_EMPTY_KEY', 'CONCORD_E_X2']);
  assert.deepEqual([...codesIn('CONCORD_ENOTACODE concord_e_lower')], []);
});
