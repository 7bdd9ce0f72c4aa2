// The access log's request lines: written without pino, in pino's format, so they must stay valid
// JSON whatever a client puts in its path, host or request id.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import { LogSink } from './proxy-harness.ts';

function logTo(sink: LogSink): AccessLog {
  return new AccessLog(sink as unknown as ConstructorParameters<typeof AccessLog>[0]);
}

test('a request line has pino\'s shape and every field; an unknown host is left out', () => {
  const sink = new LogSink();
  const log = logTo(sink);
  log.request({ requestId: 'r-1', method: 'GET', path: '/a?b=1', host: 'shop.example', client: '127.0.0.1', pool: 'web', backend: '127.0.0.1:9001', status: 200, attempts: 1, durationMs: 1.23456 });
  log.request({ requestId: 'r-2', method: 'POST', path: '/', host: undefined, client: '::1', pool: 'web', backend: '-', status: 499, attempts: 0, durationMs: 0 });
  assert.equal(sink.lines.length, 2);
  const [first, second] = sink.lines;
  assert.deepEqual(Object.keys(first!), ['level', 'time', 'requestId', 'method', 'path', 'host', 'client', 'pool', 'backend', 'status', 'attempts', 'durationMs', 'msg']);
  assert.deepEqual([first!.level, first!.msg, first!.durationMs, first!.status], [30, 'request', 1.235, 200]);
  assert.ok(!Number.isNaN(Date.parse(String(first!.time))));
  assert.equal('host' in second!, false);
});

test('whatever the strings hold, the line is valid JSON and gives them back unchanged', () => {
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('/a"b\\c', '/\u0000\n\t', '/\ud800 lone', '/\udc00', '/\ud83d\ude00')), fc.string({ unit: 'grapheme' }), fc.string(), (path, host, requestId) => {
    const sink = new LogSink();
    logTo(sink).request({ requestId, method: 'GET', path, host, client: '127.0.0.1', pool: 'p', backend: 'b', status: 200, attempts: 1, durationMs: 1 });
    const line = sink.lines[0]!;
    assert.equal(line.host, host);
    assert.equal(line.requestId, requestId);
    assert.equal(line.path, path);
  }), { numRuns: 300 });
});
