// `concord server` whose client port is taken: it says so and exits with code 2. It used to stay up
// after the error line, its peer port open and reconnecting, until killed (a benchmark's start then
// waited out its whole timeout instead of failing at once).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));
/** Bound on a run that must exit by itself: start-up and the error take a second or two. */
const CLI_TIMEOUT_MS = 30_000;

test('a member whose client port is taken exits with code 2 and names the port', async () => {
  const occupant = createServer();
  await new Promise<void>((resolve) => occupant.listen(0, '127.0.0.1', resolve));
  const port = (occupant.address() as AddressInfo).port;
  const dataDir = mkdtempSync(join(tmpdir(), 'concord-start-failure-'));
  try {
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [ENTRY, 'server', '--name', 'taken', '--data-dir', join(dataDir, 'member'),
        '--listen-client-urls', `http://127.0.0.1:${port}`, '--listen-peer-urls', 'http://127.0.0.1:0',
        '--initial-advertise-peer-urls', 'http://127.0.0.1:2380', '--initial-cluster', 'taken=http://127.0.0.1:2380', '--no-control-plane'],
      { timeout: CLI_TIMEOUT_MS }, (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
      });
    });
    assert.equal(outcome.code, 2, `exit code (null: it did not exit within ${CLI_TIMEOUT_MS} ms); stderr: ${outcome.stderr}`);
    assert.match(outcome.stderr, new RegExp(`cannot listen for clients on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    assert.doesNotMatch(outcome.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    occupant.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
