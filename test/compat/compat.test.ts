// The compatibility harness, proven on real etcd: the same etcdctl script against two fresh
// members must give identical normalized outputs (so the normalization whitelist is complete and
// the script deterministic), and the comparison must catch a real difference. Concord will run
// the same script through runCompatScripts and be diffed against etcd with diffCompatRuns.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type EtcdMember } from './etcd-process.ts';
import { Normalizer, normalize, parseEtcdctlOutput, parseJsonExact, userFacingErrors } from './etcdctl.ts';
import { diffCompatRuns, formatDifferences, runCompatScripts, type CompatRun } from './runner.ts';
import { COMPAT_SCRIPT, type CompatScript } from './scripts.ts';

export { runCompatScripts, diffCompatRuns, formatDifferences } from './runner.ts';

function resultOf(run: CompatRun, step: string) {
  const result = run.results.find((candidate) => candidate.step === step);
  assert.ok(result, `no result for step ${step}`);
  return result;
}

describe('compatibility script against real etcd', () => {
  const members: EtcdMember[] = [];
  let firstRun: CompatRun;
  let secondRun: CompatRun;

  before(async () => {
    // Started one after the other so that a failure leaves nothing unaccounted for in `members`.
    members.push(await startEtcd());
    members.push(await startEtcd());
    [firstRun, secondRun] = await Promise.all([runCompatScripts(members[0]!.endpoint), runCompatScripts(members[1]!.endpoint)]);
  });

  after(async () => {
    await Promise.all(members.map((member) => member.stop()));
  });

  test('every step ran as the script expects', () => {
    assert.deepEqual(firstRun.problems, []);
    assert.deepEqual(secondRun.problems, []);
    assert.equal(firstRun.results.length, COMPAT_SCRIPT.steps.length);
  });

  test('two fresh members give identical normalized outputs', () => {
    const differences = diffCompatRuns(firstRun, secondRun);
    assert.equal(differences.length, 0, `normalized outputs differ:\n${formatDifferences(differences)}`);
  });

  test('revisions, values and errors are compared, not normalized away', () => {
    type RangeOutput = { header: { revision: number }; kvs: { value: string; mod_revision: number }[] };
    const getAtRevision = resultOf(firstRun, 'get-at-revision').output![0] as RangeOutput;
    assert.equal(getAtRevision.header.revision, 7);
    assert.equal(Buffer.from(getAtRevision.kvs[0]!.value, 'base64').toString(), 'bar');
    assert.equal(getAtRevision.kvs[0]!.mod_revision, 2);
    assert.deepEqual(resultOf(firstRun, 'compact-already-compacted').errors, ['Error: etcdserver: mvcc: required revision has been compacted']);
    assert.equal(resultOf(firstRun, 'compact-already-compacted').status, 'exit 1');
  });

  test('the auth steps are compared on what etcd says: who may do what, and why not', () => {
    assert.deepEqual(resultOf(firstRun, 'auth-enable').output, ['Authentication Enabled']);
    assert.deepEqual(resultOf(firstRun, 'auth-get-without-user').errors, ['Error: etcdserver: user name is empty']);
    assert.deepEqual(resultOf(firstRun, 'auth-put-denied').errors, ['Error: etcdserver: permission denied']);
    assert.deepEqual(resultOf(firstRun, 'auth-get-wrong-password').errors, ['Error: etcdserver: authentication failed, invalid user ID or password']);
    assert.deepEqual(resultOf(firstRun, 'auth-user-delete-root-refused').errors, ['Error: etcdserver: invalid auth management']);
    assert.deepEqual(resultOf(firstRun, 'auth-watch-denied').errors, [
      'watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)',
      'Error: watch is canceled by the server',
    ]);
    type RoleGet = { perm: { permType?: number; key: string; range_end?: string }[] };
    const reader = resultOf(firstRun, 'auth-role-get').output![0] as RoleGet;
    assert.deepEqual(reader.perm.map((p) => [p.permType ?? 0, Buffer.from(p.key, 'base64').toString(), Buffer.from(p.range_end ?? '', 'base64').toString()]), [
      [0, 'a/', 'a0'],
      [0, 'foo', ''],
      [2, 'r/1', 'r/5'],
    ]);
    assert.deepEqual((resultOf(firstRun, 'auth-role-delete-takes-it-from-users').output![0] as { roles?: string[] }).roles, undefined);
    assert.equal(resultOf(firstRun, 'auth-get-after-disable').status, 'exit 0');
  });

  test('a lease captured in one step is the one later steps name', () => {
    const granted = resultOf(firstRun, 'lease-grant-long').output![0] as { ID: string };
    const leasedKeys = resultOf(firstRun, 'get-leased-keys').output![0] as { kvs: { lease: string }[] };
    assert.equal(granted.ID, '<lease-1>');
    assert.deepEqual(
      leasedKeys.kvs.map((kv) => kv.lease),
      ['<lease-1>', '<lease-1>'],
    );
    assert.deepEqual(resultOf(firstRun, 'lease-revoke-simple-output').output, ['lease <lease-2> revoked']);
  });
});

describe('the comparison can fail', () => {
  const putThenGet = (value: string): CompatScript => ({
    sessionKeyPrefixes: [],
    steps: [
      { kind: 'run', name: 'put', args: ['put', 'diff/key', value, '-w', 'json'] },
      { kind: 'run', name: 'get', args: ['get', 'diff/key', '-w', 'json'] },
    ],
  });

  test('a put of a different value is reported at the value, and only there', async (t) => {
    const first = await startEtcd();
    t.after(() => first.stop());
    const second = await startEtcd();
    t.after(() => second.stop());
    const [expected, actual] = await Promise.all([
      runCompatScripts(first.endpoint, { script: putThenGet('one') }),
      runCompatScripts(second.endpoint, { script: putThenGet('two') }),
    ]);
    assert.deepEqual(diffCompatRuns(expected, actual), [
      {
        step: 'get',
        path: 'output[0].kvs[0].value',
        expected: JSON.stringify(Buffer.from('one').toString('base64')),
        actual: JSON.stringify(Buffer.from('two').toString('base64')),
      },
    ]);
  });

  test('a step that fails unexpectedly, and the steps needing its capture, are problems', async (t) => {
    const member = await startEtcd();
    t.after(() => member.stop());
    const run = await runCompatScripts(member.endpoint, {
      script: {
        sessionKeyPrefixes: [],
        steps: [
          { kind: 'run', name: 'grant-bad-ttl', args: ['lease', 'grant', 'not-a-number', '-w', 'json'], captureLeaseAs: 'lost' },
          { kind: 'run', name: 'use-lost-lease', args: ['lease', 'timetolive', '{{lease:lost}}'] },
        ],
      },
    });
    assert.equal(run.problems.length, 3, run.problems.join('\n'));
    assert.match(run.problems[0]!, /^grant-bad-ttl: exit [1-9]/);
    assert.match(run.problems[1]!, /no lease ID in the output to capture as 'lost'/);
    assert.match(run.problems[2]!, /use-lost-lease: skipped: lease lost was not captured/);
  });

  test('differences in revisions, exit status and missing steps are all reported', () => {
    const base: CompatRun = {
      endpoint: 'a',
      problems: [],
      results: [
        { step: 'put', status: 'exit 0', output: [{ header: { revision: 2 } }], errors: [] },
        { step: 'get', status: 'exit 0', output: ['k', 'v'], errors: [] },
      ],
    };
    const changed: CompatRun = {
      endpoint: 'b',
      problems: [],
      results: [{ step: 'put', status: 'exit 1', output: [{ header: { revision: 3 } }], errors: ['Error: boom'] }],
    };
    assert.deepEqual(
      diffCompatRuns(base, changed).map((d) => `${d.step} ${d.path}`),
      ['put status', 'put output[0].header.revision', 'put errors[0]', 'get '],
    );
  });
});

describe('etcd process', () => {
  test('a missing etcd binary names the install script', async () => {
    await assert.rejects(startEtcd({ binary: '/nonexistent/etcd' }), /\/nonexistent\/etcd is missing: .*scripts\/install-test-deps\.sh/);
  });

  test('a member that cannot start fails within its bound, with the tail of its log', async () => {
    // A name containing '=' makes --initial-cluster unparsable: etcd exits at once.
    await assert.rejects(startEtcd({ name: 'bad name=with=equals' }), /etcd did not become healthy[\s\S]*etcd stderr/);
  });
});

describe('normalization', () => {
  // As etcdctl 3.4 prints them; the IDs are above 2^53.
  const leaseGrant = '{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":4,"raft_term":2,"ID":2324035615148564496,"TTL":60,"Error":""}';
  const rangeWithLeases =
    '{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":5,"raft_term":2},"kvs":[{"key":"azE=","create_revision":5,"mod_revision":5,"version":1,"value":"djE=","lease":2324035615148564496},{"key":"azI=","create_revision":3,"mod_revision":3,"version":1,"value":"djI=","lease":2324035615148564498}],"count":2}';

  test('64-bit integers are parsed exactly', () => {
    const parsed = parseJsonExact(leaseGrant) as { ID: bigint; revision: number };
    assert.equal(parsed.ID, 2324035615148564496n);
    assert.equal(parsed.revision, 4);
  });

  test('replaces only whitelisted fields, and keeps identities', () => {
    const normalizer = new Normalizer();
    assert.deepEqual(normalizer.json(parseJsonExact(leaseGrant)), {
      cluster_id: '<cluster-1>',
      member_id: '<member-1>',
      revision: 4,
      raft_term: '<raft-term>',
      ID: '<lease-1>',
      TTL: 60,
      Error: '',
    });
    assert.deepEqual(normalizer.json(parseJsonExact(rangeWithLeases)), {
      header: { cluster_id: '<cluster-1>', member_id: '<member-1>', revision: 5, raft_term: '<raft-term>' },
      kvs: [
        { key: 'azE=', create_revision: 5, mod_revision: 5, version: 1, value: 'djE=', lease: '<lease-1>' },
        { key: 'azI=', create_revision: 3, mod_revision: 3, version: 1, value: 'djI=', lease: '<lease-2>' },
      ],
      count: 2,
    });
  });

  test('member IDs in member lists and status are member placeholders, URLs and sizes are masked', () => {
    const status =
      '[{"Endpoint":"127.0.0.1:40000","Status":{"header":{"cluster_id":1,"member_id":3319814642761637952,"revision":4,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":3319814642761637952,"raftIndex":7,"raftTerm":2,"raftAppliedIndex":7,"dbSizeInUse":16384}}]';
    const members =
      '{"header":{"cluster_id":1,"member_id":3319814642761637952,"raft_term":2},"members":[{"ID":3319814642761637952,"name":"m","peerURLs":["http://127.0.0.1:1"],"clientURLs":["http://127.0.0.1:2"]}]}';
    const normalizer = new Normalizer();
    assert.deepEqual(normalizer.json(parseJsonExact(status)), [
      {
        Endpoint: '<endpoint>',
        Status: {
          header: { cluster_id: '<cluster-1>', member_id: '<member-1>', revision: 4, raft_term: '<raft-term>' },
          version: '3.4.23',
          dbSize: '<storage-bytes>',
          leader: '<member-1>',
          raftIndex: '<raft-index>',
          raftTerm: '<raft-term>',
          raftAppliedIndex: '<raft-index>',
          dbSizeInUse: '<storage-bytes>',
        },
      },
    ]);
    assert.deepEqual(normalizer.json(parseJsonExact(members)), {
      header: { cluster_id: '<cluster-1>', member_id: '<member-1>', raft_term: '<raft-term>' },
      members: [{ ID: '<member-1>', name: 'm', peerURLs: ['<peer-url>'], clientURLs: ['<client-url>'] }],
    });
  });

  test('remaining TTLs are masked but an expired lease (-1) is kept', () => {
    const normalizer = new Normalizer();
    const alive = normalizer.json({ id: 7, ttl: 99, 'granted-ttl': 100 });
    const gone = normalizer.json({ id: 7, ttl: -1, 'granted-ttl': 0 });
    assert.deepEqual(alive, { id: '<lease-1>', ttl: '<remaining-ttl>', 'granted-ttl': 100 });
    assert.deepEqual(gone, { id: '<lease-1>', ttl: -1, 'granted-ttl': 0 });
  });

  test('text: lease IDs in etcdctl messages and in named lock and election keys only', () => {
    const normalizer = new Normalizer(['my-lock']);
    assert.equal(
      normalizer.text('lease 2040a21426496012 granted with TTL(100s), remaining(99s)'),
      'lease <lease-1> granted with TTL(100s), remaining(<remaining-ttl>)',
    );
    assert.equal(normalizer.text('key=my-lock/2040a21426496012 rev=25'), 'key=my-lock/<lease-1> rev=25');
    assert.equal(normalizer.text('other/2040a21426496012'), 'other/2040a21426496012');
    assert.equal(normalizer.text('a/1'), 'a/1');
  });

  test('normalize() takes one document with a fresh normalizer', () => {
    assert.deepEqual(normalize({ header: { revision: 9, raft_term: 3 } }), { header: { revision: 9, raft_term: '<raft-term>' } });
  });

  test('output parsing keeps prompts as text and drops structured client logs from errors', () => {
    assert.deepEqual(parseEtcdctlOutput('compares:\n{"succeeded":true}\n', true), [{ text: 'compares:' }, { json: { succeeded: true } }]);
    assert.deepEqual(parseEtcdctlOutput('{"not":"parsed"}\n', false), [{ text: '{"not":"parsed"}' }]);
    const stderr = '{"level":"warn","ts":"2026-01-01T00:00:00Z","msg":"retrying of unary invoker failed"}\nError: etcdserver: key not found\n';
    assert.deepEqual(userFacingErrors(stderr), ['Error: etcdserver: key not found']);
  });
});
