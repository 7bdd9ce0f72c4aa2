// The page's static files over real HTTP on loopback: what is served and with which headers, what
// is refused (traversal in its usual disguises, other methods, unknown files), what is left to the
// caller (the API), and that the handler finds its files from both src/ui and dist/ui.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStaticFilesHandler, locateBrowserRoot, StaticFilesError } from '../../src/ui/static-files.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const browserRoot = join(root, 'src/ui/browser');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let server: Server;
let port = 0;

before(async () => {
  const staticFiles = createStaticFilesHandler();
  server = createServer((req, res) => {
    if (!staticFiles(req, res)) res.writeHead(418, { 'content-type': 'text/plain' }).end('not static');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((done) => server.close(() => done())));

/** Sends the path exactly as written (no normalization by a client library). */
function get(path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolveReply, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolveReply({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function errorCode(reply: Reply): string {
  return (JSON.parse(reply.body) as { error: { code: string } }).error.code;
}

test('/ is the page, with headers that keep it from being framed or run stale', async () => {
  const reply = await get('/');
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(reply.body, readFileSync(join(browserRoot, 'index.html'), 'utf8'));
  assert.equal(reply.headers['cache-control'], 'no-cache');
  assert.equal(reply.headers['x-content-type-options'], 'nosniff');
  assert.match(String(reply.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
  assert.equal(reply.headers['x-frame-options'], 'DENY');
  assert.equal((await get('/?utm=x')).status, 200, 'a query string does not change the file');
});

test('files under /ui/ carry their content types; HEAD has headers only; a matching ETag gets 304', async () => {
  const expected: [string, string][] = [
    ['/ui/main.js', 'text/javascript; charset=utf-8'],
    ['/ui/model/format.js', 'text/javascript; charset=utf-8'],
    ['/ui/dashboard.css', 'text/css; charset=utf-8'],
    ['/ui/favicon.svg', 'image/svg+xml'],
  ];
  for (const [path, type] of expected) {
    const reply = await get(path);
    assert.equal(reply.status, 200, path);
    assert.equal(reply.headers['content-type'], type, path);
    assert.equal(reply.body, readFileSync(join(browserRoot, path.slice('/ui/'.length)), 'utf8'), path);
    assert.equal(reply.headers['content-security-policy'], undefined, 'the page policy goes on the page');
  }
  const head = await get('/ui/main.js', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(Number(head.headers['content-length']), readFileSync(join(browserRoot, 'main.js')).length);
  const etag = String(head.headers.etag);
  assert.equal((await get('/ui/main.js', { headers: { 'if-none-match': etag } })).status, 304);
  assert.equal((await get('/ui/main.js', { headers: { 'if-none-match': '"stale"' } })).status, 200);
});

test('paths that try to leave the folder are refused with 400, whatever their disguise', async () => {
  for (const path of ['/ui/../static-files.ts', '/ui/%2e%2e/static-files.ts', '/ui/model/%2E%2E/%2E%2E/api-types.ts', '/ui/..%2fstatic-files.ts', '/ui/..%5cstatic-files.ts', '/ui/./main.js', '/ui/main.js%00.css', '/ui/%E0%A4%A']) {
    const reply = await get(path);
    assert.equal(reply.status, 400, path);
    assert.equal(errorCode(reply), 'CONCORD_E_UI_PATH_INVALID', path);
    assert.doesNotMatch(reply.body, /import|export/, `${path} leaked source`);
  }
});

test('files not served: unknown names, files of other types in the folder, folders; other methods get 405', async () => {
  for (const path of ['/ui/nope.js', '/ui/tsconfig.json', '/ui/model', '/ui/', '/ui/index.html/']) {
    const reply = await get(path);
    assert.equal(reply.status, 404, path);
    assert.equal(errorCode(reply), 'CONCORD_E_UI_FILE_NOT_FOUND', path);
  }
  const post = await get('/ui/main.js', { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  assert.equal(errorCode(post), 'CONCORD_E_UI_METHOD_NOT_ALLOWED');
});

test('everything else is left to the caller (the API, /metrics)', async () => {
  for (const path of ['/api/overview', '/metrics', '/uix', '/ui', '/index.html', '/%2e%2e/etc/passwd']) {
    assert.equal((await get(path)).status, 418, path);
  }
});

test('the files are found from src/ui and from the build in dist/ui; a folder without them is refused', () => {
  assert.equal(locateBrowserRoot(join(root, 'src/ui')), browserRoot);
  assert.equal(locateBrowserRoot(join(root, 'dist/ui')), browserRoot);
  const empty = mkdtempSync(join(tmpdir(), 'concord-ui-empty-'));
  try {
    assert.throws(() => locateBrowserRoot(empty), (error: unknown) => error instanceof StaticFilesError && error.code === 'CONCORD_E_UI_FILES_MISSING');
    mkdirSync(join(empty, 'browser'));
    writeFileSync(join(empty, 'browser', 'notes.txt'), 'no page here');
    assert.throws(() => createStaticFilesHandler({ root: join(empty, 'browser') }), /has no index\.html/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
