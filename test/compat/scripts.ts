// The compatibility script: etcdctl (v3.4) invocations, as data, that runner.ts executes in order
// against one fresh member (a real etcd, or Concord) and records, normalized.
//
// The script is deterministic on purpose: one client, no concurrent writers, no lease expiry (long
// TTLs, explicit revokes), so every revision it prints is the same on every correct server. The
// revision numbers written into later steps (`--rev=21`, `compaction 5`) follow from the writes
// before them; a fresh member starts at revision 1. Comments give the revision after each write.

/** Runs one etcdctl command to completion, or until it printed `stopAfterLines` lines (then ^C). */
export interface RunStep {
  readonly kind: 'run';
  readonly name: string;
  /** etcdctl arguments; `{{lease:NAME}}` is replaced by the lease captured as NAME, in hex. */
  readonly args: readonly string[];
  readonly stdin?: string;
  /** A non-zero exit is the expected behaviour (its error text is still compared). */
  readonly mayFail?: boolean;
  /** 'exit-status' for output that is inherently run-specific (e.g. `endpoint health` prints a duration). */
  readonly compare?: 'output' | 'exit-status';
  /** Reads the `ID` of this step's JSON output as a lease ID, for later `{{lease:NAME}}`. */
  readonly captureLeaseAs?: string;
  /** For commands that never exit by themselves (watch, elect -l): interrupt after this many stdout lines. */
  readonly stopAfterLines?: number;
  /** Works on a local file, not on the endpoint (`snapshot status`). */
  readonly offline?: boolean;
}

/** Starts a long-running command in the background and waits until it printed `readyAfterLines` lines. */
export interface StartStep {
  readonly kind: 'start';
  readonly name: string;
  readonly process: string;
  readonly args: readonly string[];
  readonly readyAfterLines: number;
}

/** Interrupts a background command (^C) and compares everything it printed. */
export interface StopStep {
  readonly kind: 'stop';
  readonly name: string;
  readonly process: string;
}

export type CompatStep = RunStep | StartStep | StopStep;

export interface CompatScript {
  readonly steps: readonly CompatStep[];
  /** Lock and election names: their keys end in the session's lease ID, which is normalized. */
  readonly sessionKeyPrefixes: readonly string[];
}

type RunOptions = Omit<RunStep, 'kind' | 'name' | 'args'>;

/** A run step; `args` as one string is split on spaces (quote-free commands only). */
function run(name: string, args: string | readonly string[], options: RunOptions = {}): RunStep {
  return { kind: 'run', name, args: typeof args === 'string' ? args.split(' ') : args, ...options };
}

/** Lines for `txn` on stdin: compares, a blank line, success ops, a blank line, failure ops, a blank line. */
function txnInput(compares: string[], success: string[], failure: string[]): string {
  return [...compares, '', ...success, '', ...failure, '', ''].join('\n');
}

const LOCK_NAME = 'compat-lock';
const ELECTION_NAME = 'compat-election';

const kvSteps: CompatStep[] = [
  run('put', 'put foo bar -w json'), // 2
  run('put-overwrite-prev-kv', 'put foo baz --prev-kv -w json'), // 3
  run('put-a1', 'put a/1 one -w json'), // 4
  run('put-a2-simple-output', 'put a/2 two'), // 5
  run('put-a3', 'put a/3 three -w json'), // 6
  run('put-b1', 'put b/1 bee -w json'), // 7
  run('get-key', 'get foo -w json'),
  run('get-prefix', 'get a/ --prefix -w json'),
  run('get-prefix-limit', 'get a/ --prefix --limit=2 -w json'),
  run('get-range', 'get a/1 a/3 -w json'),
  run('get-from-key-keys-only', 'get a/2 --from-key --keys-only -w json'),
  run('get-all-keys-only', ['get', '', '--from-key', '--keys-only', '-w', 'json']),
  run('get-sorted-by-value-descending', 'get a/ --prefix --sort-by=VALUE --order=DESCEND -w json'),
  run('get-sorted-by-create-ascending', 'get a/ --prefix --sort-by=CREATE --order=ASCEND --limit=2 -w json'),
  run('get-at-revision', 'get foo --rev=2 -w json'),
  run('get-missing-key', 'get nope -w json'),
  run('get-prefix-simple-output', 'get a/ --prefix'),
  run('get-print-value-only', 'get foo --print-value-only'),
  run('get-future-revision', 'get foo --rev=1000', { mayFail: true }),
  run('put-ignore-value', 'put foo --ignore-value -w json'), // 8
  run('put-ignore-value-missing-key', 'put nokey --ignore-value', { mayFail: true }),
  run('del-key', 'del b/1 -w json'), // 9
  run('del-missing-key', 'del nope -w json'),
  run('del-prefix-prev-kv', 'del a/ --prefix --prev-kv -w json'), // 10
  run('put-r1', 'put r/1 x'), // 11
  run('put-r2', 'put r/2 y'), // 12
  run('put-r3', 'put r/3 z'), // 13
  run('del-range', 'del r/1 r/3 -w json'), // 14: r/1 and r/2
  run('del-from-key-simple-output', 'del r/3 --from-key'), // 15: r/3 (no key above it exists)
];

const txnSteps: CompatStep[] = [
  run('txn-compare-succeeds', 'txn -i -w json', {
    // 16: t/1 is created by the success branch.
    stdin: txnInput(['value("foo") = "baz"', 'create("t/1") = "0"'], ['put t/1 yes', 'get foo'], ['put t/1 no']),
  }),
  run('txn-compare-fails', 'txn -i -w json', {
    // 17: the failure branch writes t/2.
    stdin: txnInput(['mod("t/1") > "1000"'], ['put t/1 never'], ['put t/2 fallback', 'get t/ --prefix']),
  }),
  run('txn-not-equal-simple-output', 'txn', {
    stdin: txnInput(['value("t/1") != "yes"'], ['del t/1'], ['get t/1']),
  }),
];

const compactionSteps: CompatStep[] = [
  run('compact', 'compaction 5'),
  run('compact-already-compacted', 'compaction 3', { mayFail: true }),
  run('compact-future-revision', 'compaction 1000', { mayFail: true }),
  run('get-compacted-revision', 'get foo --rev=3', { mayFail: true }),
  run('get-at-compaction-revision', 'get foo --rev=5 -w json'),
];

const leaseSteps: CompatStep[] = [
  run('lease-grant-long', 'lease grant 600 -w json', { captureLeaseAs: 'long' }),
  run('lease-grant-short', 'lease grant 300 -w json', { captureLeaseAs: 'short' }),
  run('put-with-lease-1', 'put leased/1 v1 --lease={{lease:long}} -w json'), // 18
  run('lease-keep-alive-once', 'lease keep-alive --once {{lease:long}} -w json'),
  // One attached key only: etcd lists a lease's keys in Go map order, which changes run to run.
  run('lease-timetolive-keys', 'lease timetolive {{lease:long}} --keys -w json'),
  run('put-with-lease-2', 'put leased/2 v2 --lease={{lease:long}} -w json'), // 19
  run('get-leased-keys', 'get leased/ --prefix -w json'),
  run('lease-timetolive-simple-output', 'lease timetolive {{lease:short}}'),
  // Ordered by expiry: the short lease first.
  run('lease-list', 'lease list -w json'),
  run('lease-revoke', 'lease revoke {{lease:long}} -w json'), // 20: both leased keys deleted
  run('get-after-revoke', 'get leased/ --prefix -w json'),
  run('lease-timetolive-revoked', 'lease timetolive {{lease:long}} -w json'),
  run('lease-revoke-again', 'lease revoke {{lease:long}}', { mayFail: true }),
  run('lease-keep-alive-once-revoked', 'lease keep-alive --once {{lease:long}}', { mayFail: true }),
  run('lease-revoke-simple-output', 'lease revoke {{lease:short}}'),
];

const watchSteps: CompatStep[] = [
  run('put-w-a', 'put w/a 1'), // 21
  run('put-w-b', 'put w/b 2'), // 22
  run('put-w-a-again', 'put w/a 11'), // 23
  run('del-w-b', 'del w/b'), // 24
  // History since revision 21 arrives as one watch response: one JSON line.
  run('watch-prefix-prev-kv-from-revision', 'watch w/ --prefix --prev-kv --rev=21 -w json', { stopAfterLines: 1 }),
  // Two PUT events of w/a, three lines each (type, key, value).
  run('watch-key-from-revision-simple-output', 'watch w/a --rev=21', { stopAfterLines: 6 }),
  // Starting below the compaction revision: the server cancels the watch and etcdctl exits.
  run('watch-compacted-revision', 'watch w/ --prefix --rev=2', { mayFail: true }),
];

const lockAndElectionSteps: CompatStep[] = [
  // etcdctl runs the command while holding the lock (25), then unlocks (26).
  run('lock-run-command', ['lock', LOCK_NAME, '--', 'sh', '-c', 'echo "key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"']),
  run('get-lock-released', `get ${LOCK_NAME}/ --prefix -w json`),
  // 27: the campaign key; etcdctl prints the key and the proposal once it leads.
  { kind: 'start', name: 'elect-campaign', process: 'campaigner', args: ['elect', ELECTION_NAME, 'proposal-one'], readyAfterLines: 2 },
  run('elect-observe', `elect -l ${ELECTION_NAME}`, { stopAfterLines: 2 }),
  run('get-election-key-simple-output', `get ${ELECTION_NAME}/ --prefix`),
  // ^C makes etcdctl resign: 28, the campaign key is deleted.
  { kind: 'stop', name: 'elect-resign', process: 'campaigner' },
  run('get-after-resign', `get ${ELECTION_NAME}/ --prefix --keys-only -w json`),
];

const clusterAndMaintenanceSteps: CompatStep[] = [
  run('member-list', 'member list -w json'),
  run('endpoint-status', 'endpoint status -w json'),
  // `endpoint health` prints how long the health proposal took: only its exit status is comparable.
  run('endpoint-health', 'endpoint health', { compare: 'exit-status' }),
  run('alarm-list', 'alarm list'),
  // Relative path: the step runs in a fresh directory per run, so the printed path is the same.
  run('snapshot-save', 'snapshot save compat.snapshot.db'),
  run('snapshot-status', 'snapshot status compat.snapshot.db -w json', { offline: true }),
];

// Authentication and authorization, last because it leaves users and roles behind. Passwords are
// given as etcdctl 3.4 takes them without a terminal: `--new-user-password`, `name:password`, or on
// stdin with `--interactive=false`. Users: root; alice (role reader: read foo, read the prefix a/,
// readwrite [r/1, r/5)); bob (role writer: write from w/ on, read every key); cn-user (no password).
const ROOT = '--user=root:rootpw';
const ALICE = '--user=alice:alicepw';
const BOB = '--user=bob:bobpw';

const authSteps: CompatStep[] = [
  run('auth-user-add-root', 'user add root --new-user-password=rootpw -w json'),
  run('auth-user-add-password-on-stdin', 'user add alice --interactive=false', { stdin: 'alicepw\n' }),
  run('auth-user-add-name-and-password', 'user add bob:bobpw'),
  run('auth-user-add-no-password', 'user add cn-user --no-password -w json'),
  run('auth-user-add-existing', 'user add alice --new-user-password=other', { mayFail: true }),
  run('auth-role-add', 'role add reader'),
  run('auth-role-add-json', 'role add writer -w json'),
  run('auth-role-add-existing', 'role add reader', { mayFail: true }),
  run('auth-grant-key', 'role grant-permission reader read foo'),
  run('auth-grant-prefix', 'role grant-permission reader read a/ --prefix'),
  run('auth-grant-range', 'role grant-permission reader readwrite r/1 r/5 -w json'),
  run('auth-grant-from-key', 'role grant-permission writer write w/ --from-key'),
  run('auth-grant-all-keys', ['role', 'grant-permission', 'writer', 'read', '', '--from-key']),
  run('auth-grant-to-missing-role', 'role grant-permission nosuch read k', { mayFail: true }),
  run('auth-role-get', 'role get reader -w json'),
  run('auth-role-get-simple-output', 'role get reader'),
  run('auth-role-list', 'role list -w json'),
  run('auth-user-grant-role', 'user grant-role alice reader'),
  run('auth-user-grant-role-json', 'user grant-role bob writer -w json'),
  run('auth-user-grant-missing-role', 'user grant-role alice nosuch', { mayFail: true }),
  run('auth-user-grant-role-missing-user', 'user grant-role nobody reader', { mayFail: true }),
  run('auth-user-get-detail', 'user get alice --detail'),
  run('auth-user-list', 'user list -w json'),
  // The root role does not exist yet: etcdctl creates it and grants it to root, then enables.
  run('auth-enable', 'auth enable'),
  run('auth-get-without-user', 'get foo', { mayFail: true }),
  run('auth-get-wrong-password', `get foo --user=alice:wrong`, { mayFail: true }),
  run('auth-put-as-root', `put foo bar ${ROOT} -w json`),
  run('auth-get-allowed-key', `get foo ${ALICE} -w json`),
  run('auth-put-denied', `put foo x ${ALICE}`, { mayFail: true }),
  run('auth-get-allowed-prefix', `get a/ --prefix ${ALICE} -w json`),
  run('auth-get-denied-prefix', `get a --prefix ${ALICE}`, { mayFail: true }),
  run('auth-put-allowed-range', `put r/2 v ${ALICE} -w json`),
  run('auth-get-range-partly-denied', `get r/1 r/6 ${ALICE}`, { mayFail: true }),
  run('auth-del-allowed-range', `del r/1 r/5 --prev-kv ${ALICE} -w json`),
  run('auth-del-denied-range', `del r/ --prefix ${ALICE}`, { mayFail: true }),
  run('auth-txn-denied-compare', `txn ${ALICE} -w json`, { stdin: txnInput(['value("secret") = "x"'], ['get foo'], []), mayFail: true }),
  run('auth-txn-allowed', `txn ${ALICE} -w json`, { stdin: txnInput(['value("foo") = "bar"'], ['put r/3 t', 'get foo'], ['put r/4 no']) }),
  run('auth-watch-denied', `watch secret ${ALICE}`, { mayFail: true }),
  run('auth-put-from-key', `put w/x 1 ${BOB} -w json`),
  run('auth-get-all-keys', ['get', '', '--from-key', '--keys-only', BOB, '-w', 'json']),
  run('auth-user-get-self', `user get alice ${ALICE} -w json`),
  run('auth-user-get-other-denied', `user get root ${ALICE}`, { mayFail: true }),
  run('auth-user-list-denied', `user list ${ALICE}`, { mayFail: true }),
  run('auth-role-get-held', `role get reader ${ALICE} -w json`),
  run('auth-user-add-denied', `user add mallory --new-user-password=x ${ALICE}`, { mayFail: true }),
  run('auth-user-passwd', `user passwd alice --interactive=false ${ROOT}`, { stdin: 'newpw\n' }),
  run('auth-get-old-password', `get foo ${ALICE}`, { mayFail: true }),
  run('auth-get-new-password', 'get foo --user=alice:newpw -w json'),
  run('auth-revoke-permission', `role revoke-permission reader foo ${ROOT}`),
  run('auth-revoke-permission-not-granted', `role revoke-permission reader foo ${ROOT}`, { mayFail: true }),
  run('auth-revoke-permission-prefix', `role revoke-permission reader a/ --prefix ${ROOT} -w json`),
  run('auth-get-after-revoke', 'get foo --user=alice:newpw', { mayFail: true }),
  run('auth-user-revoke-role', `user revoke-role alice reader ${ROOT}`),
  run('auth-user-revoke-role-not-granted', `user revoke-role alice reader ${ROOT}`, { mayFail: true }),
  run('auth-user-delete-root-refused', `user delete root ${ROOT}`, { mayFail: true }),
  run('auth-role-delete-root-refused', `role delete root ${ROOT}`, { mayFail: true }),
  run('auth-user-revoke-root-refused', `user revoke-role root root ${ROOT}`, { mayFail: true }),
  run('auth-role-delete', `role delete writer ${ROOT}`),
  run('auth-role-delete-takes-it-from-users', `user get bob ${ROOT} -w json`),
  run('auth-user-delete', `user delete alice ${ROOT}`),
  run('auth-user-delete-missing', `user delete alice ${ROOT}`, { mayFail: true }),
  run('auth-user-get-missing', `user get alice ${ROOT}`, { mayFail: true }),
  run('auth-disable-denied', `auth disable ${BOB}`, { mayFail: true }),
  run('auth-disable', `auth disable ${ROOT}`),
  run('auth-get-after-disable', 'get foo -w json'),
  run('auth-user-list-after-disable', 'user list -w json'),
  run('auth-role-list-after-disable', 'role list -w json'),
];

export const COMPAT_SCRIPT: CompatScript = {
  steps: [...kvSteps, ...txnSteps, ...compactionSteps, ...leaseSteps, ...watchSteps, ...lockAndElectionSteps, ...clusterAndMaintenanceSteps, ...authSteps],
  sessionKeyPrefixes: [LOCK_NAME, ELECTION_NAME],
};
