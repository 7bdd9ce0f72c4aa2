// A quick smoke of the proxy benchmarks' own logic (the benchmarks themselves are not part of the
// suite): wrk's report is read correctly, and the open-loop generator sends exactly the scheduled
// requests and times every answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { LatencyHistogram } from '../../bench/latency-histogram.ts';
import { runOpenLoop } from '../../bench/open-loop.ts';
import { parseWrk } from '../../bench/wrk-output.ts';

test("wrk's latency report is read in milliseconds", () => {
  const output = `Running 8s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms  420.11us   9.80ms   88.00%
  Latency Distribution
     50%  950.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.40ms
  440000 requests in 8.00s, 50.00MB read
Requests/sec:  55000.12
Transfer/sec:      6.25MB
`;
  assert.deepEqual(parseWrk(output), { rps: 55000.12, p50Ms: 0.95, p99Ms: 2.4 });
  assert.equal(parseWrk(output.replace('2.40ms', '1.50s')).p99Ms, 1500);
  assert.throws(() => parseWrk('nothing useful'), /cannot read wrk output/);
});

test('the open-loop generator sends what was scheduled and times every answer', async () => {
  const server = createServer((_req, res) => res.end('hello\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as { port: number }).port;
    const result = await runOpenLoop({ host: '127.0.0.1', port, path: '/', rps: 200, seconds: 1, initialConnections: 4, maxConnections: 16, drainSeconds: 5 });
    assert.equal(result.sent, 200);
    assert.equal(result.completed, 200);
    assert.equal(result.errors, 0);
    assert.equal(result.non2xx, 0);
    const histogram = LatencyHistogram.fromJSON(result.histogram);
    assert.equal(histogram.totalCount, 200);
    assert.ok(histogram.percentileMs(50) > 0);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
