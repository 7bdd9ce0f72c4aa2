// The compatibility suite proper: the same etcdctl script against a real etcd member and against a
// Concord member, normalized outputs compared field by field. Only the whitelisted fields (ids,
// terms, raft indexes, lease ids, remaining TTLs, URLs) are normalized; revisions, values, counts
// and error texts must match exactly.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { COMPAT_MEMBER_NAME, startEtcd } from './etcd-process.ts';
import type { EtcdMember } from './etcd-process.ts';
import { diffCompatRuns, formatDifferences, runCompatScripts } from './runner.ts';
import type { CompatRun } from './runner.ts';

/**
 * Steps whose output differs on purpose, each with the reason. The test also checks that each one
 * still differs, so this list cannot silently go stale.
 */
const DOCUMENTED_DIFFERENCES = new Map([
  ['snapshot-status', "etcdctl reads a snapshot file as etcd's bbolt database; Concord's snapshot file is its own format, used with `concord snapshot restore`"],
]);

let etcd: EtcdMember | undefined;
let concord: StoreServer | undefined;
let dataRoot: string;
let expected: CompatRun;
let actual: CompatRun;

before(async () => {
  dataRoot = mkdtempSync(join(tmpdir(), 'concord-compat-'));
  etcd = await startEtcd();
  const config = resolveServerConfig({}, settingsFromFlags({
    name: COMPAT_MEMBER_NAME, dataDir: join(dataRoot, 'member'), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0',
  }));
  concord = await StoreServer.start(config, { logger: { info: () => {}, warn: () => {}, error: () => {} } });
  [expected, actual] = await Promise.all([runCompatScripts(etcd.endpoint), runCompatScripts(concord.clientAddresses[0]!)]);
});

after(async () => {
  await concord?.stop();
  await etcd?.stop();
  rmSync(dataRoot, { recursive: true, force: true });
});

test('every scripted etcdctl step gives the same normalized output from Concord as from etcd', () => {
  assert.deepEqual(expected.problems, [], 'the script runs cleanly against etcd');
  assert.equal(actual.results.length, expected.results.length, 'every step ran against Concord');
  const differences = diffCompatRuns(expected, actual).filter((d) => !DOCUMENTED_DIFFERENCES.has(d.step));
  assert.equal(differences.length, 0, `Concord differs from etcd:\n${formatDifferences(differences)}`);
});

test('the documented differences are still differences (or the list must shrink)', () => {
  const differing = new Set(diffCompatRuns(expected, actual).map((d) => d.step));
  for (const [step, reason] of DOCUMENTED_DIFFERENCES) assert.ok(differing.has(step), `${step} now matches etcd; remove it from the list (${reason})`);
});
