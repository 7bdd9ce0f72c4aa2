// The fast path's request parser against node:http's own, on random and mutated requests
// (fast-check): whatever the parser accepts, node:http accepts too and reads exactly the same way
// (method, target, header names and values, body length). Everything else the parser hands off
// to node:http, which then decides as it always would. So the fast path never forwards a request
// node:http would refuse, and never reads one differently (the root of request smuggling).
//
// node:http's view comes from a real node:http server on loopback, fed the same bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { HEAD_PARSED, RequestHeadParser, HEADER_FIELDS, FIELD_LINE_START, FIELD_NAME_END, FIELD_VALUE_START, FIELD_VALUE_END } from '../../src/traffic/proxy/http1/request-head.ts';

interface NodeRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  /** -1 when node:http did not see the body end (the connection was cut first). */
  bodyLength: number;
}

/** A node:http server that notes the first request it reads on each connection, by the client's port. */
interface Reference {
  readonly server: Server;
  readonly firstRequests: Map<number, NodeRequest>;
}

async function startReference(): Promise<Reference> {
  const firstRequests = new Map<number, NodeRequest>();
  const server = createServer((req, res) => {
    const port = req.socket.remotePort!;
    const seen: NodeRequest = { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, bodyLength: -1 };
    if (!firstRequests.has(port)) firstRequests.set(port, seen);
    let bodyLength = 0;
    req.on('data', (chunk: Buffer) => (bodyLength += chunk.length));
    req.on('end', () => {
      seen.bodyLength = bodyLength;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, firstRequests };
}

/** Sends `bytes` on a fresh connection, half-closes it, and returns the first request node:http read from them (if any). */
function nodeView(reference: Reference, bytes: Buffer): Promise<NodeRequest | undefined> {
  return new Promise((resolve) => {
    const socket = connect((reference.server.address() as AddressInfo).port, '127.0.0.1');
    let localPort = 0;
    const timer = setTimeout(() => socket.destroy(), 2000);
    socket.on('connect', () => {
      localPort = socket.localPort!;
      socket.end(bytes);
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      // The server's last events for this connection may run just after the client saw it close.
      setImmediate(() => resolve(reference.firstRequests.get(localPort)));
    });
  });
}

function ourView(parser: RequestHeadParser, bytes: Buffer): NodeRequest | undefined {
  if (parser.parse(bytes, 0, bytes.length) !== HEAD_PARSED) return undefined;
  const rawHeaders: string[] = [];
  for (let i = 0; i < parser.headerCount; i++) {
    const fields = i * HEADER_FIELDS;
    rawHeaders.push(bytes.toString('latin1', parser.headers[fields + FIELD_LINE_START], parser.headers[fields + FIELD_NAME_END]));
    rawHeaders.push(bytes.toString('latin1', parser.headers[fields + FIELD_VALUE_START], parser.headers[fields + FIELD_VALUE_END]));
  }
  return {
    method: parser.method,
    url: bytes.toString('latin1', parser.targetStart, parser.targetEnd),
    rawHeaders,
    bodyLength: Math.max(parser.contentLength, 0),
  };
}

/** Mostly the common, well-formed choice; sometimes a hostile one. */
function mostly<T>(common: fc.Arbitrary<T>, hostile: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: common, weight: 12 }, { arbitrary: hostile, weight: 1 });
}

const method = mostly(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'), fc.constantFrom('TRACE', 'CONNECT', 'get', 'PRI', 'G ET', ''));
const target = mostly(
  fc.string({ unit: fc.constantFrom(...'/abc?=&%;,\'"<>[]\\^`{|}~!$()*+@:.-_'.split('')), minLength: 0, maxLength: 12 }).map((path) => `/${path}`),
  fc.constantFrom('*', 'http://h/x', '//x', '/%zz', '/a#b', '/a\x7fb', '/a b', '/caf\xe9', '/a\tb', ''),
);
const version = mostly(fc.constant('HTTP/1.1'), fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1'));
const lineEnd = fc.oneof({ arbitrary: fc.constant('\r\n'), weight: 12 }, { arbitrary: fc.constantFrom('\n', '\r', '\r\r\n', ' \r\n'), weight: 1 });
const anyValue = fc.string({ unit: fc.constantFrom(...' \tabc09;,=:"\\/'.split('')), maxLength: 10 });
const hostileValue = fc.constantFrom('+5', '-1', '5,5', '5, 5', '0x5', '1e3', '99999999999999999999', 'chunked', 'Chunked', ' chunked', 'chunked ', 'xchunked',
  'chunked, identity', 'identity, chunked', '\tchunked', 'upgrade', 'Content-Length', 'host', '100-continue', 'websocket', 'a\x01b', 'caf\xe9', 'a\x7fb');
/** A header: a name with values that make sense for it, mostly; sometimes anything. */
const nameAndValue = mostly<[string, string]>(
  fc.oneof(
    fc.tuple(fc.constantFrom('Content-Length', 'content-length'), fc.constantFrom('0', '5', ' 5', '5 ', '05', '3')),
    fc.tuple(fc.constantFrom('Connection', 'connection'), fc.constantFrom('close', 'keep-alive', 'x-custom', 'close, x-custom', 'Keep-Alive , X-Custom', '')),
    fc.tuple(fc.constantFrom('X-Request-Id', 'X-Forwarded-For', 'Cookie', 'Accept', 'X-Custom', 'Keep-Alive', 'TE', 'x_y', "!#$%&'*+-.^_`|~"), anyValue),
  ),
  fc.tuple(fc.constantFrom('Host', 'Content-Length', 'Connection', 'Transfer-Encoding', 'Expect', 'Upgrade', 'Content Length', 'Host ', ' Host', 'X\x00Y', 'Ho\xe9st', ''),
    fc.oneof(anyValue, hostileValue)),
);
const separator = mostly(fc.constantFrom(': ', ':'), fc.constantFrom(' : ', ':\t', ': \t ', ' :'));
const header = fc.tuple(nameAndValue, separator, lineEnd, fc.oneof({ arbitrary: fc.constant(false), weight: 12 }, { arbitrary: fc.constant(true), weight: 1 }))
  .map(([[name, value], sep, ending, folded]) => [name, sep, value, ending, folded] as const);

/** A request made of plausible and hostile parts; the body is as long as the first Content-Length says, when it says something sensible. */
const request = fc.tuple(method, target, version, lineEnd, fc.array(header, { maxLength: 6 }), mostly(fc.constant(true), fc.constant(false)), lineEnd).map(([m, t, v, end, headers, withHost, finalEnd]) => {
  let text = `${m} ${t} ${v}${end}`;
  if (withHost) text += 'Host: fuzz.example\r\n';
  let declared = 0;
  for (const [name, separator, value, ending, folded] of headers) {
    text += `${name}${separator}${value}${ending}`;
    if (folded) text += ` folded${ending}`;
    if (declared === 0 && /^content-length$/i.test(name) && /^\s*\d{1,3}\s*$/.test(value)) declared = Number(value);
  }
  return Buffer.from(`${text}${finalEnd}${'b'.repeat(declared)}`, 'latin1');
});

/** A well-formed request with a few bytes changed, inserted or removed. */
const mutated = fc.tuple(
  fc.constantFrom(
    'GET /p?q=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n',
    'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close, x-a\r\nX-A: 1\r\n\r\nhello',
    'PUT /p HTTP/1.1\r\nHost: h\r\nX-Request-Id: r1\r\nContent-Length: 3\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nabc',
  ),
  fc.array(fc.tuple(fc.nat(200), fc.constantFrom(...[0x00, 0x09, 0x0a, 0x0d, 0x20, 0x2c, 0x3a, 0x7f, 0xe9, 0x41, 0x30, 0x2b]), fc.constantFrom('insert', 'replace', 'delete')), { minLength: 1, maxLength: 3 }),
).map(([text, edits]) => {
  const bytes = [...Buffer.from(text, 'latin1')];
  for (const [at, byte, edit] of edits) {
    const position = at % (bytes.length + 1);
    if (edit === 'insert') bytes.splice(position, 0, byte);
    else if (edit === 'replace' && position < bytes.length) bytes[position] = byte;
    else bytes.splice(position, 1);
  }
  return Buffer.from(bytes);
});

test('whatever the fast path parses, node:http parses the same way; the rest is handed to node:http', async () => {
  const reference = await startReference();
  const parser = new RequestHeadParser('x-request-id');
  let parsedCount = 0;
  let handedOffCount = 0;
  try {
    await fc.assert(fc.asyncProperty(fc.oneof({ arbitrary: request, weight: 3 }, { arbitrary: mutated, weight: 1 }), async (bytes) => {
      const ours = ourView(parser, bytes);
      if (ours === undefined) {
        handedOffCount++;
        return;
      }
      parsedCount++;
      const seen = await nodeView(reference, bytes);
      const shown = JSON.stringify(bytes.toString('latin1'));
      assert.ok(seen !== undefined, `node:http refused a request the fast path would forward: ${shown}`);
      assert.deepEqual({ ...ours, bodyLength: 0 }, { ...seen, bodyLength: 0 }, shown);
      if (seen.bodyLength >= 0) assert.equal(ours.bodyLength, seen.bodyLength, `body length of ${shown}`);
    }), { numRuns: 1500 });
  } finally {
    reference.server.closeAllConnections();
    await new Promise((resolve) => reference.server.close(resolve));
  }
  // The generators must exercise both sides, or the property proves little.
  assert.ok(parsedCount >= 100, `only ${parsedCount} inputs were parsed by the fast path`);
  assert.ok(handedOffCount >= 300, `only ${handedOffCount} inputs were handed off`);
});
