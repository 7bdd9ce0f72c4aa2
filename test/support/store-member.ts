// Shared by the tests that run a real store member in-process: a temp folder for data dirs, a
// quiet member on a free port, etcdctl that must succeed, and a bounded wait.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import type { StoreServerLogger, StoreServerOptions } from '../../src/server/store-server.ts';
import { ETCDCTL_BINARY, runEtcdctl } from '../compat/etcdctl.ts';

export const QUIET_LOGGER: StoreServerLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** Default bound on a wait for something the member should do promptly. */
export const WAIT_MS = 5_000;
/** How often a wait re-checks its condition. */
export const POLL_MS = 20;

export interface TestDataRoot {
  /** Set before the first test of the file; removed after the last. */
  dir: string;
}

/**
 * Registers before/after hooks (call it at the top level of a test file) that create a temp
 * folder for the file's data dirs, check that etcdctl is installed, and remove the folder at the end.
 */
export function useTestDataRoot(prefix: string): TestDataRoot {
  const root: TestDataRoot = { dir: '' };
  before(() => {
    assert.ok(existsSync(ETCDCTL_BINARY), `${ETCDCTL_BINARY} is missing: install the test dependencies with 'sudo bash scripts/install-test-deps.sh'`);
    root.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => rmSync(root.dir, { recursive: true, force: true }));
  return root;
}

/** Starts a member named `name` with its data dir under the root, on a free loopback port. */
export function startTestMember(
  root: TestDataRoot, name: string, flags: Record<string, string> = {}, options: StoreServerOptions = {},
): Promise<StoreServer> {
  const config = resolveServerConfig({}, settingsFromFlags({
    name, dataDir: join(root.dir, name), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', ...flags,
  }));
  return StoreServer.start(config, { logger: QUIET_LOGGER, ...options });
}

/** Runs etcdctl against `endpoint`; it must succeed. Returns its stdout. */
export async function etcdctlOk(endpoint: string, args: string[], cwd?: string): Promise<string> {
  const outcome = await runEtcdctl({ endpoint, args, ...(cwd === undefined ? {} : { cwd }) });
  assert.equal(outcome.exitCode, 0, `etcdctl ${args.join(' ')} failed: ${outcome.stderr}`);
  return outcome.stdout;
}

/** Waits until `condition` holds, failing the test with `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
