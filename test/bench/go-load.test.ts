// The store benchmark's Go load generator (bench/go-load/main.go), built here from Debian's
// packaged sources: its histogram buckets are latency-histogram.ts's, its counts are what the
// member really applied, and a bad spec gets a clear error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type CallOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import { buildGoLoad } from '../../bench/go-load.ts';
import { runLoadInChildProcess, type LoadSpec } from '../../bench/grpc-load.ts';
import { LatencyHistogram, LATENCY_US_MAX } from '../../bench/latency-histogram.ts';
import { startSystem } from '../../bench/store-systems.ts';
import { loadEtcdProtos, type Encodable, type RangeRequest } from '../../src/api/etcd/proto-loader.ts';

function tsBucketIndex(valueUs: number): number {
  const histogram = new LatencyHistogram();
  histogram.recordMs(valueUs / 1000);
  return histogram.toJSON().buckets[0]![0];
}

test('go-load puts every value in the bucket latency-histogram.ts puts it in', () => {
  const values = new Set<number>([LATENCY_US_MAX]);
  for (let value = 0; value <= 300; value++) values.add(value);
  for (let power = 6; power < 31; power++) {
    for (const delta of [-1, 0, 1]) values.add(2 ** power + delta);
  }
  let seed = 12345;
  for (let i = 0; i < 500; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    values.add(seed % 10_000_000);
  }
  const list = [...values];
  const run = spawnSync(buildGoLoad(), ['--bucket-indexes', list.join(',')], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const goIndexes = run.stdout.trim().split('\n').map(Number);
  assert.equal(goIndexes.length, list.length);
  list.forEach((value, i) => assert.equal(goIndexes[i], tsBucketIndex(value), `bucket of ${value} µs`));
});

test('go-load refuses a bad spec with a message that names the problem', () => {
  const binary = buildGoLoad();
  const notJson = spawnSync(binary, ['--spec', '{not json'], { encoding: 'utf8' });
  assert.equal(notJson.status, 2);
  assert.match(notJson.stderr, /not valid JSON of a LoadSpec/);
  const unknownField = spawnSync(binary, ['--spec', '{"endpoint":"127.0.0.1:1","colour":"red"}'], { encoding: 'utf8' });
  assert.equal(unknownField.status, 2);
  assert.match(unknownField.stderr, /unknown field "colour"/);
  const badOp = spawnSync(binary, ['--spec', JSON.stringify({ ...spec('127.0.0.1:1', 'put'), op: 'delete' })], { encoding: 'utf8' });
  assert.equal(badOp.status, 1);
  assert.match(badOp.stderr, /op must be put or range, got "delete"/);
  const keysTooLong = spawnSync(binary, ['--spec', JSON.stringify({ ...spec('127.0.0.1:1', 'put'), keyCount: 1000, keySizeBytes: 2 })], { encoding: 'utf8' });
  assert.equal(keysTooLong.status, 1);
  assert.match(keysTooLong.stderr, /1000 keys do not fit in 2-byte keys/);
  const noArguments = spawnSync(binary, [], { encoding: 'utf8' });
  assert.equal(noArguments.status, 2);
  assert.match(noArguments.stderr, /usage: go-load --spec/);
});

function spec(endpoint: string, op: LoadSpec['op']): LoadSpec {
  return {
    endpoint, op, clients: 4, clientsPerChannel: 2, warmupSeconds: 0, seconds: 1,
    keyCount: 20, keySizeBytes: 8, valueSizeBytes: 256, requestTimeoutMs: 10_000,
  };
}

interface KvClient extends Client {
  Range(request: Encodable<RangeRequest>, options: CallOptions, callback: (error: ServiceError | null, response?: { header: { revision: string }; kvs: { key: Buffer; value: Buffer }[] }) => void): void;
}

test('go-load against a real member: every put it counts is one the member applied, and range preloads the key space', async () => {
  buildGoLoad();
  const root = mkdtempSync(join(tmpdir(), 'concord-go-load-'));
  const running = await startSystem('concord', { dataRoot: root, logPath: join(root, 'concord.log'), members: 1 });
  const client = new (loadEtcdProtos().clients.KV)(running.endpoint, credentials.createInsecure()) as unknown as KvClient;
  const readAll = () => new Promise<{ revision: number; keys: string[]; valueSizes: number[] }>((resolve, reject) => {
    client.Range({ key: Buffer.from('0'), range_end: Buffer.from(':') }, { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error) reject(error);
      else resolve({ revision: Number(response!.header.revision), keys: response!.kvs.map((kv) => kv.key.toString()), valueSizes: response!.kvs.map((kv) => kv.value.length) });
    });
  });
  try {
    const put = await runLoadInChildProcess(spec(running.endpoint, 'put'), join(root, 'load-put.log'), 'go');
    assert.equal(put.errors, 0, put.errorSamples.join('; '));
    assert.equal(put.channels, 2, '4 clients at 2 per channel');
    assert.ok(put.completed > 0, 'some puts completed in the measured second');
    const histogram = LatencyHistogram.fromJSON(put.histogram);
    assert.ok(histogram.totalCount >= put.completed);
    const afterPut = await readAll();
    // With no warmup every successful put is recorded, and a fresh member's revision is 1 + its puts.
    assert.equal(afterPut.revision - 1, histogram.totalCount, 'the histogram counts exactly the puts the member applied');
    assert.ok(afterPut.keys.every((key) => /^000000[01]\d$/.test(key)), `keys are 8-digit numbers below 20: ${afterPut.keys.join(',')}`);
    assert.ok(afterPut.valueSizes.every((size) => size === 256));

    const range = await runLoadInChildProcess({ ...spec(running.endpoint, 'range'), keyCount: 30 }, join(root, 'load-range.log'), 'go');
    assert.equal(range.errors, 0, range.errorSamples.join('; '));
    assert.ok(range.completed > 0);
    const afterRange = await readAll();
    assert.deepEqual(afterRange.keys, Array.from({ length: 30 }, (_, i) => String(i).padStart(8, '0')), 'the preload wrote the whole key space');
    assert.equal(afterRange.revision, afterPut.revision + 1, 'one preload txn (30 keys, at most 100 per txn) and reads only');
  } finally {
    client.close();
    await running.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
