// The applied configuration in the store: `concord config apply` writes a validated file (and an
// event) in one transaction, `get` reads it back as written, a bad file is refused whole and the
// stored one stays, --expect-revision refuses a lost update, and watchers switch to each valid
// revision live while refusing one written by hand that does not validate.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppliedConfigWatcher, type AppliedConfig } from '../../src/control/config-store.ts';
import { readEvents } from '../../src/control/events.ts';
import { CONFIG_KEY } from '../../src/control/store-keys.ts';
import { startTestStore, storeClient } from '../autoscale/controller-harness.ts';
import { waitFor } from '../support/store-member.ts';
import { freePort } from '../support/free-port.ts';
import { runCli } from '../support/cli-run.ts';

const EXAMPLE = readFileSync(new URL('../../examples/proxy.yaml', import.meta.url), 'utf8');

test('apply, get, a refused file, a lost update, and live watchers', async (t) => {
  const store = await startTestStore();
  const client = storeClient(store.endpoint);
  const dir = mkdtempSync(join(tmpdir(), 'concord-config-store-'));
  t.after(async () => {
    client.close();
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const endpoints = ['--endpoints', store.endpoint];
  const seen: AppliedConfig[] = [];
  const rejected: string[] = [];
  const watcher = new AppliedConfigWatcher(client, { onConfig: (applied) => seen.push(applied), onRejected: (problem) => rejected.push(problem.message) });
  watcher.start();
  t.after(() => watcher.stop());
  await watcher.loaded();
  assert.equal(watcher.applied, undefined, 'nothing applied yet');
  const none = await runCli(['config', 'get', ...endpoints]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no configuration is applied .*concord config apply FILE/);

  const first = join(dir, 'first.yaml');
  writeFileSync(first, EXAMPLE);
  const applied = await runCli(['config', 'apply', first, '--by', 'alice', '--json', ...endpoints]);
  assert.deepEqual([applied.code, applied.stderr], [0, '']);
  const outcome = JSON.parse(applied.stdout) as { key: string; revision: string; previousRevision: string | null; digest: string };
  assert.deepEqual([outcome.key, outcome.previousRevision], [CONFIG_KEY, null]);
  await waitFor('the watcher to get the first configuration', () => seen.length === 1);
  assert.equal(seen[0]!.revision.toString(), outcome.revision);
  assert.deepEqual(seen[0]!.config.pools.map((pool) => pool.name), ['web']);
  const got = await runCli(['config', 'get', ...endpoints]);
  assert.equal(got.stdout, EXAMPLE, 'get returns the file as written, comments included');
  const events = await readEvents(client);
  assert.ok(events.some((event) => event.kind === 'config-applied' && event.message.startsWith(`alice applied configuration ${outcome.digest}`)), 'the apply is on the timeline');

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, EXAMPLE.replace('fall: 3', 'fall: 0').replace('127.0.0.1:9002', 'nowhere'));
  const refused = await runCli(['config', 'apply', bad, ...endpoints]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /pools\[0\]\.backends\[1\]\.address: 'nowhere' is not HOST:PORT.*\n.*pools\[0\]\.health\.fall: must be at least 1\nnothing was applied; the running configuration stays\n$/s);
  assert.equal((await client.get(CONFIG_KEY))!.modRevision.toString(), outcome.revision, 'the stored configuration is untouched');

  const second = join(dir, 'second.yaml');
  writeFileSync(second, EXAMPLE.replace('balance: p2c', 'balance: ewma'));
  const stale = await runCli(['config', 'apply', second, '--expect-revision', '1', ...endpoints]);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, new RegExp(`at revision ${outcome.revision}, not 1: someone applied another one`));
  const fresh = await runCli(['config', 'apply', second, '--expect-revision', outcome.revision, ...endpoints]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stdout, new RegExp(`as revision \\d+ \\([0-9a-f]{12}, replaces revision ${outcome.revision}\\)`));
  await waitFor('the watcher to switch to the second configuration', () => seen.length === 2);
  assert.equal(seen[1]!.config.pools[0]!.balance, 'ewma');

  // Written by hand, bypassing validation: refused by the readers; the running configuration stays.
  await client.put(CONFIG_KEY, 'pools: [{ name: web, backends: [] }]');
  await waitFor('the watcher to refuse the hand-written value', () => rejected.length === 1);
  assert.match(rejected[0]!, /pools\[0\]\.backends: a pool needs at least one backend/);
  assert.equal((watcher.applied as AppliedConfig | undefined)?.config.pools[0]!.balance, 'ewma', 'the running configuration stays');
  const shown = await runCli(['config', 'get', '--json', ...endpoints]);
  assert.equal((JSON.parse(shown.stdout) as { valid: boolean }).valid, false);

  const unreachable = await runCli(['config', 'apply', first, '--endpoints', `127.0.0.1:${await freePort()}`]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /^concord config apply: .*unreachable/);
});
