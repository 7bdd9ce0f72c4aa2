// The fast path's HTTP/1.1 parsers (pure): what the request parser accepts, what it hands off and
// why, which header lines it forwards; how the response parser frames bodies and what it refuses;
// where the chunked scanner finds a body's end, whatever the split of its bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CHUNKED_INVALID, CHUNKED_NEED_MORE, ChunkedBodyScanner } from '../../src/traffic/proxy/http1/chunked-body.ts';
import { HEAD_HAND_OFF, HEAD_INCOMPLETE, HEAD_PARSED, RequestHeadParser } from '../../src/traffic/proxy/http1/request-head.ts';
import {
  BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, RESPONSE_INCOMPLETE, RESPONSE_INVALID, ResponseHeadParser,
} from '../../src/traffic/proxy/http1/response-head.ts';

const bytes = (text: string) => Buffer.from(text, 'latin1');

function parseRequest(text: string, parser = new RequestHeadParser('x-request-id')): { verdict: number; parser: RequestHeadParser; forwarded: string } {
  const input = bytes(text);
  const verdict = parser.parse(input, 0, input.length);
  let forwarded = '';
  if (verdict === HEAD_PARSED) for (let i = 0; i < parser.keptRunCount; i++) forwarded += input.toString('latin1', parser.keptRuns[i * 2], parser.keptRuns[i * 2 + 1]);
  return { verdict, parser, forwarded };
}

test('a simple request is parsed: method, target, host, length; hop-by-hop and X-Forwarded-* lines are not forwarded', () => {
  const { verdict, parser, forwarded } = parseRequest('POST /a/b?c=1 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nConnection: keep-alive, X-Private\r\n' +
    'X-Private: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Request-Id: abc\r\nAccept: */*\r\n\r\nhello');
  assert.equal(verdict, HEAD_PARSED);
  assert.equal(parser.method, 'POST');
  const input = bytes('POST /a/b?c=1 HTTP/1.1\r\n');
  assert.equal(input.toString('latin1', parser.targetStart, parser.targetEnd), '/a/b?c=1');
  assert.equal(parser.contentLength, 5);
  assert.equal(parser.connectionClose, false);
  assert.equal(forwarded, 'Host: shop.example\r\nContent-Length: 5\r\nAccept: */*\r\n');
  assert.equal(parser.requestIdStart > 0, true, 'the request id is found');
});

test('Connection: close is noted; a GET without Content-Length has none', () => {
  const { verdict, parser } = parseRequest('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(verdict, HEAD_PARSED);
  assert.equal(parser.connectionClose, true);
  assert.equal(parser.contentLength, -1);
});

test('every request outside the strict subset is handed off, with its reason', () => {
  const cases: [string, string][] = [
    ['GET / HTTP/1.0\r\nHost: a\r\n\r\n', 'version'],
    ['get / HTTP/1.1\r\nHost: a\r\n\r\n', 'method'],
    ['TRACE / HTTP/1.1\r\nHost: a\r\n\r\n', 'method'],
    ['GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n', 'target'],
    ['GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n', 'target'],
    ['GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n', 'target'],
    ['GET / HTTP/1.1\nHost: a\r\n\r\n', 'version'],
    ['GET / HTTP/1.1\r\nHost: a\n\r\n', 'header-value'],
    ['GET / HTTP/1.1\r\nHost: a\r\n\n', 'bare-lf'],
    ['GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n', 'bare-cr'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n', 'obs-fold'],
    ['GET / HTTP/1.1\r\nHost : a\r\n\r\n', 'header-name'],
    ['GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n', 'header-name'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n', 'header-value'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n', 'header-value'],
    ['GET / HTTP/1.1\r\nX: a\r\n\r\n', 'no-host'],
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'duplicate-host'],
    ['GET / HTTP/1.1\r\nHost:\r\n\r\n', 'empty-host'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', 'duplicate-content-length'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n', 'content-length'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n', 'content-length'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n', 'content-length'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n', 'content-length'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456\r\n\r\n', 'content-length'],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', 'transfer-encoding'],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 'transfer-encoding'],
    ['POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n', 'expect'],
    ['GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 'upgrade'],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n', 'upgrade'],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\n\r\n', 'connection'],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n', 'connection'],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n', 'connection'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: 1\r\nX-Request-Id: 2\r\n\r\n', 'duplicate-request-id'],
    [`GET / HTTP/1.1\r\nHost: a\r\n${'X: y\r\n'.repeat(100)}\r\n`, 'too-many-headers'],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: ${'y'.repeat(9000)}\r\n\r\n`, 'head-too-large'],
  ];
  for (const [text, reason] of cases) {
    const { verdict, parser } = parseRequest(text);
    assert.deepEqual([verdict, parser.handOffReason], [HEAD_HAND_OFF, reason], JSON.stringify(text.slice(0, 80)));
  }
});

test('an incomplete head asks for more bytes, at every split point; a head over the limit without an end is handed off', () => {
  const text = 'GET /x HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n';
  for (let end = 0; end < text.length; end++) {
    const parser = new RequestHeadParser('x-request-id');
    assert.equal(parser.parse(bytes(text), 0, end), HEAD_INCOMPLETE, `split at ${end}`);
  }
  const endless = bytes(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'y'.repeat(9000)}`);
  const parser = new RequestHeadParser('x-request-id');
  assert.equal(parser.parse(endless, 0, endless.length), HEAD_HAND_OFF);
  assert.equal(parser.handOffReason, 'head-too-large');
});

test('a parser is reused: nothing of one head leaks into the next', () => {
  const parser = new RequestHeadParser('x-request-id');
  parseRequest('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\nX-Request-Id: r\r\n\r\n', parser);
  const { verdict } = parseRequest('GET / HTTP/1.1\r\nHost: b\r\n\r\n', parser);
  assert.equal(verdict, HEAD_PARSED);
  assert.deepEqual([parser.contentLength, parser.connectionClose, parser.requestIdStart], [-1, false, -1]);
});

test('the request parser never throws and never reads past the bytes it is given (random bytes and mutated requests)', () => {
  const base = 'POST /p?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close, x\r\nX: y\r\n\r\nabc';
  fc.assert(fc.property(fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(fc.nat(base.length), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([at, insert]) => Buffer.concat([bytes(base.slice(0, at)), insert, bytes(base.slice(at + 1))])),
  ), (input) => {
    const padded = Buffer.concat([Buffer.from(input), bytes('\r\n\r\n')]);
    const parser = new RequestHeadParser('x-request-id');
    const verdict = parser.parse(padded, 0, input.length);
    if (verdict === HEAD_PARSED) assert.ok(parser.headEnd <= input.length, 'the head ends within the given bytes');
  }), { numRuns: 2000 });
});

function parseResponse(text: string, headRequest = false): ResponseHeadParser {
  const parser = new ResponseHeadParser();
  const input = bytes(text);
  const verdict = parser.parse(input, 0, input.length, headRequest);
  assert.notEqual(verdict, RESPONSE_INCOMPLETE, text);
  return parser;
}

test('response framing: length, chunked, until close, and none for HEAD, 1xx, 204 and 304', () => {
  const cases: [string, boolean, number][] = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', false, BODY_LENGTH],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', false, BODY_NONE],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', false, BODY_CHUNKED],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', false, BODY_CHUNKED],
    ['HTTP/1.1 200 OK\r\n\r\n', false, BODY_UNTIL_CLOSE],
    ['HTTP/1.0 200 OK\r\n\r\n', false, BODY_UNTIL_CLOSE],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', true, BODY_NONE],
    ['HTTP/1.1 204 No Content\r\n\r\n', false, BODY_NONE],
    ['HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n', false, BODY_NONE],
    ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', false, BODY_NONE],
    ['HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n', false, BODY_LENGTH],
  ];
  for (const [text, head, framing] of cases) {
    const parser = parseResponse(text, head);
    assert.equal(parser.invalidReason, '', text);
    assert.equal(parser.framing, framing, text);
  }
});

test('response connection reuse, keep-alive hint, shed marker, and the header lines relayed', () => {
  const text = 'HTTP/1.1 503 Service Unavailable\r\nConnection: close, X-Secret\r\nKeep-Alive: timeout=5, max=100\r\nX-Secret: s\r\n' +
    'x-concord-shed: overload\r\nSet-Cookie: a=1\r\nTransfer-Encoding: chunked\r\nProxy-Authenticate: Basic\r\n\r\n';
  const parser = parseResponse(text);
  assert.deepEqual([parser.status, parser.connectionClose, parser.keepAliveTimeoutMs, parser.shed], [503, true, 5000, true]);
  let relayed = '';
  for (let i = 0; i < parser.keptRunCount; i++) relayed += text.slice(parser.keptRuns[i * 2], parser.keptRuns[i * 2 + 1]);
  assert.equal(relayed, 'x-concord-shed: overload\r\nSet-Cookie: a=1\r\nTransfer-Encoding: chunked\r\n');
  assert.equal(parseResponse('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n').connectionClose, true, 'HTTP/1.0 connections are not reused');
});

test('responses that cannot be read without doubt are invalid', () => {
  const cases: [string, string][] = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'content-length-with-transfer-encoding'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', 'duplicate-content-length'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'content-length'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'transfer-encoding'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'transfer-encoding'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'duplicate-transfer-encoding'],
    ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'transfer-encoding-in-http-1.0'],
    ['HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n', 'reason'],
    ['HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n', 'header-value'],
    ['HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', 'obs-fold'],
    ['HTTP/1.1 200 OK\r\nX : a\r\n\r\n', 'header-name'],
    ['HTTP/2 200\r\n\r\n', 'status-line'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'status'],
  ];
  for (const [text, reason] of cases) {
    const parser = new ResponseHeadParser();
    const input = bytes(text);
    assert.equal(parser.parse(input, 0, input.length, false), RESPONSE_INVALID, text);
    if (reason !== '') assert.equal(parser.invalidReason, reason, text);
  }
  const huge = bytes(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`);
  const parser = new ResponseHeadParser();
  assert.equal(parser.parse(huge, 0, huge.length, false), RESPONSE_INVALID);
  assert.equal(parser.invalidReason, 'head-too-large');
});

/** Feeds `body` to a fresh scanner in pieces cut at `cuts`; returns the end found (relative to the body) or the failure. */
function scanInPieces(body: Buffer, cuts: number[]): number {
  const scanner = new ChunkedBodyScanner();
  const points = [...new Set([0, ...cuts.map((cut) => cut % (body.length + 1)), body.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const found = scanner.scan(body, points[i]!, points[i + 1]!);
    if (found !== CHUNKED_NEED_MORE) return found;
  }
  return CHUNKED_NEED_MORE;
}

test('the chunked scanner finds the end of a body however its bytes are split, and nothing beyond', () => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 5 }),
    fc.constantFrom('', 'Trailer-A: 1\r\n', 'A: 1\r\nB: 2\r\n'),
    fc.constantFrom('', ';ext=1', ';a;b="c"'),
    fc.array(fc.nat(400), { maxLength: 6 }),
    (chunks, trailers, extension, cuts) => {
      const framed = Buffer.concat([
        ...chunks.flatMap((chunk) => [bytes(`${chunk.length.toString(16)}${extension}\r\n`), Buffer.from(chunk), bytes('\r\n')]),
        bytes(`0${extension}\r\n${trailers}\r\n`),
      ]);
      const followed = Buffer.concat([framed, bytes('HTTP/1.1 200 OK\r\n')]);
      assert.equal(scanInPieces(followed, cuts.filter((cut) => cut < framed.length)), framed.length);
    },
  ), { numRuns: 500 });
});

test('broken chunked framing is invalid', () => {
  for (const text of ['x\r\n', '5\r\nhello\n', '5\r\nhelloX\r\n', '5\nhello\r\n', '0\r\nTrailer\n\r\n', '0\r\n\r\r', '-5\r\n', 'fffffffffffffff\r\n', '5\r\nhello\r\n0\r\n \r\n\r\n']) {
    assert.equal(scanInPieces(bytes(text), []), CHUNKED_INVALID, JSON.stringify(text));
  }
});
