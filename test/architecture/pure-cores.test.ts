// Pure cores decide; shells do I/O. This test enforces the boundary folder by folder: a file in a
// pure folder may import only from pure folders, never from `node:` or any package with I/O, and
// may not reach for the ambient clock or randomness. See docs/architecture.md.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Folders whose code must be deterministic and free of I/O. Later issues add kv, traffic/balance, ... */
export const PURE_FOLDERS = ['src/consensus', 'src/sim', 'src/random', 'src/kv', 'src/traffic/balance', 'src/traffic/health', 'src/traffic/proxy/http1', 'src/traffic/shed', 'src/autoscale/policy', 'src/autoscale/hpa', 'src/autoscale/sim', 'src/autoscale/state', 'src/control/sharding'];

/** Ambient sources of time and randomness that a pure core must receive as arguments instead. */
const FORBIDDEN_GLOBALS: [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bnew Date\s*\(/, 'new Date()'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\bsetTimeout\s*\(/, 'setTimeout()'],
  [/\bsetInterval\s*\(/, 'setInterval()'],
  [/\bsetImmediate\s*\(/, 'setImmediate()'],
  [/\bprocess\./, 'process'],
  [/\brequire\s*\(/, 'require()'],
];

function filesUnder(folder: string): string[] {
  const result: string[] = [];
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) result.push(...filesUnder(path));
    else if (path.endsWith('.ts')) result.push(path);
  }
  return result;
}

function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const pattern = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const match of source.matchAll(pattern)) specifiers.push((match[1] ?? match[2])!);
  return specifiers;
}

function isInsidePureFolder(path: string): boolean {
  const rel = relative(root, path);
  return PURE_FOLDERS.some((folder) => rel === folder || rel.startsWith(`${folder}/`));
}

/** Problems in one file of a pure folder: forbidden imports and ambient time or randomness. */
export function purityProblems(path: string, source: string): string[] {
  const problems: string[] = [];
  for (const specifier of importsOf(source)) {
    if (specifier.startsWith('node:') || !specifier.startsWith('.')) {
      problems.push(`imports '${specifier}' (pure cores import only other pure project files)`);
      continue;
    }
    const target = resolve(dirname(path), specifier);
    if (!isInsidePureFolder(target)) problems.push(`imports '${specifier}', which is outside the pure folders`);
  }
  const withoutComments = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const [pattern, name] of FORBIDDEN_GLOBALS) {
    if (pattern.test(withoutComments)) problems.push(`uses ${name}; pass time or randomness in instead`);
  }
  return problems;
}

test('pure folders import nothing from node:, packages or shell folders, and read no clock or randomness', () => {
  const problems: string[] = [];
  for (const folder of PURE_FOLDERS) {
    for (const file of filesUnder(join(root, folder))) {
      for (const problem of purityProblems(file, readFileSync(file, 'utf8'))) {
        problems.push(`${relative(root, file)}: ${problem}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the purity check catches each kind of violation it claims to', () => {
  const file = join(root, 'src/consensus/example.ts');
  assert.match(purityProblems(file, "import { readFileSync } from 'node:fs';").join(), /node:fs/);
  assert.match(purityProblems(file, "import { Command } from 'commander';").join(), /commander/);
  assert.match(purityProblems(file, "import { main } from '../cli/main.ts';").join(), /outside the pure folders/);
  assert.match(purityProblems(file, "const load = () => import('node:os');").join(), /node:os/);
  assert.match(purityProblems(file, 'const t = Date.now();').join(), /Date\.now/);
  assert.match(purityProblems(file, 'const r = Math.random();').join(), /Math\.random/);
  assert.match(purityProblems(file, 'setTimeout(() => {}, 1);').join(), /setTimeout/);
  assert.deepEqual(purityProblems(file, "import { RaftLog } from './log.ts';\n// Date.now() in a comment is fine"), []);
});
