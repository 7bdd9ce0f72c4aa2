// Hostile YAML config files for `concord server --config-file`: generated settings of every type,
// random text and bytes, alias bombs, deep nesting, non-UTF-8 bytes, a 50 MB file, a device. Each is
// either a valid configuration or a ConfigError (CONCORD_E_CONFIG_INVALID) with one line per
// problem naming where it is: never another exception, a hang, or a file read without bound.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { MAX_CONFIG_FILE_BYTES, firstInvalidUtf8Offset, readYamlConfigFile } from '../../src/server/config-file.ts';
import { ConfigError, SERVER_SETTINGS, resolveServerConfig, settingsFromFile } from '../../src/server/server-config.ts';
import { loadConfigFile } from '../../src/control/config.ts';
import { fuzzRuns } from '../support/fuzz-runs.ts';

let root: string;
let fileCount = 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'concord-config-fuzz-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function writeConfig(content: string | Uint8Array): string {
  const path = join(root, `config-${fileCount++}.yaml`);
  writeFileSync(path, content);
  return path;
}

/** Loads the file as `concord server --config-file` does; returns the error, if any, after checking its shape. */
function loadServerConfig(path: string): ConfigError | undefined {
  try {
    resolveServerConfig(settingsFromFile(path), {});
    return undefined;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${(error as Error)?.stack ?? String(error)}`);
    assert.equal(error.code, 'CONCORD_E_CONFIG_INVALID');
    const lines = error.message.split('\n');
    if (lines.length > 1) {
      // A list of problems: a heading, then one line per problem naming its key.
      assert.equal(lines[0], 'invalid server configuration:');
      for (const line of lines.slice(1)) assert.match(line, /^ {2}(server: |--[a-z-]+ \(server\.[A-Za-z]+(\[[^\]]+\])*\): )\S/, `problem line names its key: ${JSON.stringify(line)}`);
    } else {
      assert.ok(lines[0]!.length > 0);
    }
    return error;
  }
}

const KEYS = SERVER_SETTINGS.map((spec) => spec.key as string);
const hugeNumber = fc.constantFrom(2 ** 53, 2 ** 64, 1e308, -1e308, Number.MAX_SAFE_INTEGER, -0, 0.5, -1, 2 ** 31);
const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.integer(),
    hugeNumber,
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom('http://127.0.0.1:0', 'https://[::1]:2379', 'http://x', 'ftp://a:1', '1.5MiB', 'new', 'existing', 'periodic', '1h', 'a=http://127.0.0.1:2380'),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;
const serverSection = fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })), anyValue, { maxKeys: 6 });

describe('concord server --config-file with hostile YAML', () => {
  test('generated settings of any type: a valid configuration or one line per problem, naming the key', (t) => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(serverSection, (section) => {
        if (loadServerConfig(writeConfig(stringify({ server: section })))) refused++;
        else accepted++;
      }),
      { numRuns: fuzzRuns(400) },
    );
    assert.ok(refused > 0, `${accepted} accepted, ${refused} refused`);
    t.diagnostic(`generated server sections: ${accepted} accepted, ${refused} refused`);
  });

  test('random text and random bytes never escape as anything but a one-line ConfigError', () => {
    const yamlish = fc.array(fc.constantFrom('server:', '\n', '  ', '- ', ': ', '&a ', '*a', '[', ']', '{', '}', '"', "'", '#', '!!binary ', '|', '>', '---', '...', '%YAML 1.2', '\t', 'name', '0x', '1e9'), { maxLength: 40 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(yamlish, fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 200 })), (content) => {
        const error = loadServerConfig(writeConfig(content));
        if (error && !error.message.startsWith('invalid server configuration')) assert.ok(!error.message.includes('\n'), error.message);
      }),
      { numRuns: fuzzRuns(400) },
    );
  });

  test('an alias bomb is refused by the alias limit, not expanded', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const started = performance.now();
    const error = loadServerConfig(writeConfig(`${levels.join('\n')}\nserver: {name: x}\n`));
    assert.match(error?.message ?? '', /is not valid YAML: Excessive alias count/);
    assert.ok(performance.now() - started < 5_000, 'refused without expanding');
  });

  test('very deep nesting is a one-line error, not a stack overflow escaping', () => {
    for (const depth of [1_000, 100_000]) {
      const error = loadServerConfig(writeConfig(`server: ${'['.repeat(depth)}${']'.repeat(depth)}\n`));
      assert.ok(error, `depth ${depth} is refused`);
      assert.ok(!error.message.includes('\n'), error.message);
    }
    const error = loadServerConfig(writeConfig(`server:\n  name: ${'{a: '.repeat(50_000)}1${'}'.repeat(50_000)}\n`));
    assert.ok(error);
  });

  test('non-UTF-8 bytes are named by their offset', () => {
    const bytes = new TextEncoder().encode('server:\n  name: caf\u00e9-\u0000\n');
    const latin1 = Uint8Array.from([...new TextEncoder().encode('server:\n  name: caf'), 0xe9, 0x0a]);
    assert.doesNotMatch(loadServerConfig(writeConfig(bytes))?.message ?? '', /not UTF-8/, 'valid UTF-8 (even a NUL) is not refused as such');
    const error = loadServerConfig(writeConfig(latin1));
    assert.match(error?.message ?? '', /is not UTF-8: byte 19 \(0xe9\) starts no valid character; save the file as UTF-8/);
  });

  test('firstInvalidUtf8Offset agrees with a strict decoder', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'binary' }).map((s) => new TextEncoder().encode(s))), (bytes) => {
        const offset = firstInvalidUtf8Offset(bytes);
        let valid = true;
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes);
        } catch {
          valid = false;
        }
        assert.equal(offset === -1, valid);
        if (offset > 0) new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, offset));
      }),
      { numRuns: fuzzRuns(2_000) },
    );
  });

  test('a 50 MB file, or a device that never ends, is refused by MAX_CONFIG_FILE_BYTES without being read', () => {
    const path = join(root, 'huge.yaml');
    writeFileSync(path, 'server:\n  name: x\n');
    truncateSync(path, 50 * 1024 * 1024);
    for (const file of [path, '/dev/zero']) {
      const started = performance.now();
      assert.throws(() => readYamlConfigFile(file), new RegExp(`config file ${file} is larger than ${MAX_CONFIG_FILE_BYTES} bytes \\(MAX_CONFIG_FILE_BYTES\\)`));
      assert.ok(performance.now() - started < 5_000);
    }
    const justUnder = writeConfig(`server:\n  name: x\n#${'x'.repeat(MAX_CONFIG_FILE_BYTES - 20)}\n`);
    assert.equal(loadServerConfig(justUnder), undefined);
  });

  test('a missing file or a directory is a one-line ConfigError', () => {
    for (const path of [join(root, 'missing.yaml'), root]) {
      assert.throws(() => readYamlConfigFile(path), (error: unknown) => error instanceof ConfigError && /^cannot read config file/.test(error.message) && !error.message.includes('\n'));
    }
  });

  test('a YAML syntax error names the line and column; a YAML warning is refused too', () => {
    assert.throws(() => readYamlConfigFile(writeConfig('server:\n  name: a\n  name: b\n')), /is not valid YAML at line 3, column 3: Map keys must be unique$/);
    assert.throws(() => readYamlConfigFile(writeConfig('server:\n  name: !!binary [a]\n')), /is not valid YAML at line 2, column 9: .*binary/);
  });
});

// The proxy's loader (src/control/config.ts) reads through the same bounded, strict-UTF-8 reader;
// these were the fuzzer's findings against it, now regression tests.
describe('the proxy config loader with hostile YAML (findings for src/control/config.ts)', () => {
  test('generated documents never escape as anything but a ConfigError', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('proxy', 'pools', 'routes', 'server', 'x'), anyValue, { maxKeys: 3 }), (document) => {
        try {
          loadConfigFile(writeConfig(stringify(document)));
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'CONCORD_E_CONFIG_INVALID', String(error));
        }
      }),
      { numRuns: fuzzRuns(200) },
    );
  });
  test('loadConfigFile refuses a file over the size limit without reading it whole, /dev/zero included (regression)', () => {
    const big = writeConfig('');
    truncateSync(big, 50 * 1024 * 1024);
    assert.throws(() => loadConfigFile(big), /larger than 1048576 bytes \(MAX_CONFIG_FILE_BYTES\)/);
    assert.throws(() => loadConfigFile('/dev/zero'), /larger than 1048576 bytes/);
  });
  test('loadConfigFile refuses non-UTF-8 bytes, naming the byte (regression)', () => {
    const path = writeConfig(Buffer.from('proxy:\n  zone: caf\xe9\n', 'latin1'));
    assert.throws(() => loadConfigFile(path), /is not UTF-8: byte 18 \(0xe9\)/);
  });
  test('loadConfigFile reports a YAML error on one line, with its line and column (regression)', () => {
    const path = writeConfig('proxy:\n  a: 1\n  a: 2\n');
    assert.throws(() => loadConfigFile(path), (error: Error) => !error.message.includes('\n') && /line 3, column 3/.test(error.message));
  });
});
