// A member joining a running cluster (--initial-cluster-state existing) trusts the first member
// that answers its join request over the peer port. Here that member is a fake one answering with
// generated JSON: resolveIdentity must either find this member's entry in a well-formed answer or
// give up with a ConfigError, never throw anything else out of the server's start-up.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { resolveIdentity } from '../../src/server/member-identity.ts';
import { ConfigError, resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { NodeFileSystem } from '../../src/storage/file-system.ts';
import { FRAME_TYPES, FrameDecoder, encodeFrame } from '../../src/transport/frame.ts';
import { fuzzRuns } from '../support/fuzz-runs.ts';

const OWN_PEER_URL = 'http://127.0.0.1:1';
let fakePeer: Server;
let fakePort = 0;
let answer: Uint8Array = new Uint8Array(0);
let root: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'concord-join-fuzz-'));
  // Answers every HELLO with HELLO_OK and the current answer bytes, as a member answers a join request.
  fakePeer = createServer((socket) => {
    const decoder = new FrameDecoder(64 * 1024);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (decoder.push(chunk).some((frame) => frame.type === FRAME_TYPES.HELLO)) socket.end(encodeFrame(FRAME_TYPES.HELLO_OK, answer));
    });
  });
  await new Promise<void>((resolve) => fakePeer.listen(0, '127.0.0.1', resolve));
  fakePort = (fakePeer.address() as { port: number }).port;
});

after(async () => {
  await new Promise((resolve) => fakePeer.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

let runCount = 0;
function joinWith(document: unknown): Promise<unknown> {
  answer = new TextEncoder().encode(typeof document === 'string' ? document : JSON.stringify(document));
  const config = resolveServerConfig({}, settingsFromFlags({
    name: 'joiner', dataDir: join(root, `d${runCount++}`), initialClusterState: 'existing',
    initialCluster: `joiner=${OWN_PEER_URL},peer=http://127.0.0.1:${fakePort}`, initialAdvertisePeerUrls: OWN_PEER_URL,
  }));
  return resolveIdentity(config, { fs: new NodeFileSystem(), joinTimeoutMs: 150, log: () => {} });
}

const id = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), fc.constantFrom('0', '-1', '18446744073709551616', 'abc', '1e3', ''), fc.integer());
const urls = fc.array(fc.oneof(fc.constantFrom(OWN_PEER_URL, 'http://127.0.0.1:2', 'not a url', ''), fc.string({ maxLength: 8 })), { maxLength: 3 });
const member = fc.record({ id, name: fc.oneof(fc.constantFrom('joiner', ''), fc.string({ maxLength: 6 })), peerUrls: urls, clientUrls: urls, isLearner: fc.boolean() }, { requiredKeys: [] });
const validId = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }).map(String);
const validMember = fc.record({ id: validId, name: fc.constantFrom('joiner', '', 'other'), peerUrls: fc.subarray([OWN_PEER_URL, 'http://127.0.0.1:2']), clientUrls: fc.constant([]), isLearner: fc.boolean() });
const wellFormed = fc.record({ clusterId: validId, members: fc.array(validMember, { minLength: 1, maxLength: 3 }), removed: fc.array(validId, { maxLength: 2 }) });
const almostValid = fc.record({ clusterId: id, members: fc.array(member, { maxLength: 4 }), removed: fc.array(id, { maxLength: 2 }) }, { requiredKeys: [] });

test('a generated join answer: this member is found in a well-formed one, anything else is a ConfigError', async (t) => {
  const outcomes = { joined: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(fc.oneof(wellFormed, almostValid, fc.jsonValue(), fc.string({ maxLength: 20 })), async (document) => {
      try {
        const identity = (await joinWith(document)) as { expected: { clusterId: bigint; memberId: bigint } };
            assert.ok(identity.expected.clusterId > 0n && identity.expected.memberId < 1n << 64n);
        outcomes.joined++;
      } catch (error) {
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${(error as Error).stack}`);
        outcomes.refused++;
      }
    }),
    { numRuns: fuzzRuns(40) },
  );
  t.diagnostic(`join answers: ${outcomes.joined} joined, ${outcomes.refused} refused`);
});

test('regression: a member entry without peerUrls is refused, not a TypeError out of start-up', async () => {
  // Found by this fuzzing: the answer was only checked to have arrays at the top, and
  // `member.peerUrls.some(...)` threw "Cannot read properties of undefined (reading 'some')".
  await assert.rejects(joinWith({ clusterId: '1', members: [{ id: '2' }], removed: [] }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /no member answered within 150 ms .*the answer to the join request is malformed: members\.0\.name/);
    return true;
  });
});

test('a well-formed answer naming this member by its peer URL is joined', async () => {
  const identity = await joinWith({ clusterId: '12345', members: [{ id: '18446744073709551615', name: '', peerUrls: [OWN_PEER_URL], clientUrls: [], isLearner: true }], removed: [] });
  assert.deepEqual((identity as { expected: unknown }).expected, { clusterId: 12345n, memberId: 18446744073709551615n });
});
