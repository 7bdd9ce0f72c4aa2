// Serves the dashboard's page: `/` (index.html) and `/ui/<file>` from src/ui/browser. The control
// plane's admin server mounts this handler in front of its API routes:
//
//   const staticFiles = createStaticFilesHandler();
//   createServer((request, response) => { if (!staticFiles(request, response)) routeApi(request, response); });
//
// Only files that existed in the browser folder when the handler was created are served: a request
// is looked up in that list, never joined onto a filesystem path, so no request can name a file
// outside the folder. Requests that try (`..`, encoded slashes, backslashes, NUL) are refused with
// 400 so that a probe is visible as such. Responses may be stored but are revalidated every time
// (`no-cache` with an ETag): after an upgrade, a browser never runs a stale script against a newer API.

import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** URL prefix of the page's files. */
export const UI_PATH_PREFIX = '/ui/';
/** The page itself. */
const INDEX_FILE = 'index.html';
/** More files than this in the browser folder means the folder is not what we think it is. */
export const MAX_STATIC_FILES = 256;

/** What is served, by extension. Anything else in the folder (tsconfig.json, notes) is not. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * The page talks only to the server that served it and runs only its own files; it may not be
 * framed (its buttons freeze the autoscaler and drain backends: clickjacking bait).
 */
const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export class StaticFilesError extends Error {
  override name = 'StaticFilesError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Answers the request if it is the page's (returns true), or leaves it alone (returns false). */
export type StaticFilesHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

export interface StaticFilesOptions {
  /** The folder to serve; by default the dashboard's own (see locateBrowserRoot). */
  root?: string;
}

/**
 * Finds the page's folder from the folder of this module: src/ui/browser when running the sources,
 * and the same folder when running the build in dist/ui (the build compiles TypeScript only, so the
 * page's files stay in src, which every checkout and package carries).
 */
export function locateBrowserRoot(moduleDir = fileURLToPath(new URL('.', import.meta.url))): string {
  const candidates = [join(moduleDir, 'browser'), join(moduleDir, '..', '..', 'src', 'ui', 'browser')];
  const found = candidates.find((folder) => existsSync(join(folder, INDEX_FILE)));
  if (found === undefined) {
    throw new StaticFilesError('CONCORD_E_UI_FILES_MISSING', `the dashboard's files are missing (looked for ${INDEX_FILE} in ${candidates.join(' and ')}); reinstall Concord or run it from a complete checkout`);
  }
  return found;
}

/** Lists the servable files under root: URL path (`/ui/a/b.js`) to file path. */
function listFiles(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && CONTENT_TYPES[extname(entry.name)] !== undefined) {
        if (files.size >= MAX_STATIC_FILES) {
          throw new StaticFilesError('CONCORD_E_UI_FILES_MISSING', `${root} holds more than ${MAX_STATIC_FILES} files; is it the dashboard's folder?`);
        }
        files.set(UI_PATH_PREFIX + relative(root, path).split(sep).join('/'), path);
      }
    }
  };
  walk(root);
  return files;
}

export function createStaticFilesHandler(options: StaticFilesOptions = {}): StaticFilesHandler {
  const root = options.root ?? locateBrowserRoot();
  const files = listFiles(root);
  const index = files.get(UI_PATH_PREFIX + INDEX_FILE);
  if (index === undefined) throw new StaticFilesError('CONCORD_E_UI_FILES_MISSING', `${root} has no ${INDEX_FILE}`);
  files.set('/', index);

  return (request, response) => {
    const rawPath = (request.url ?? '/').split('?', 1)[0]!;
    if (rawPath !== '/' && !rawPath.startsWith(UI_PATH_PREFIX)) return false;
    const path = checkedPath(rawPath);
    if (path instanceof StaticFilesError) {
      sendError(response, 400, path);
      return true;
    }
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      sendError(response, 405, new StaticFilesError('CONCORD_E_UI_METHOD_NOT_ALLOWED', `${path} is a file of the dashboard: use GET or HEAD`));
      return true;
    }
    const file = files.get(path);
    if (file === undefined) {
      sendError(response, 404, new StaticFilesError('CONCORD_E_UI_FILE_NOT_FOUND', `the dashboard has no file ${path}; open / for the page`));
      return true;
    }
    sendFile(request, response, file, method === 'HEAD');
    return true;
  };
}

/** The request path with its segments decoded, or why it is refused. */
function checkedPath(rawPath: string): string | StaticFilesError {
  const segments: string[] = [];
  for (const raw of rawPath.split('/').slice(1)) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return new StaticFilesError('CONCORD_E_UI_PATH_INVALID', `the path ${rawPath} has a malformed %-escape`);
    }
    if (segment === '..' || segment === '.' || /[/\\\0]/.test(segment)) {
      return new StaticFilesError('CONCORD_E_UI_PATH_INVALID', `the path ${rawPath} tries to leave the dashboard's folder ('.', '..', an encoded '/', '\\' or NUL); ask for /ui/<file>`);
    }
    segments.push(segment);
  }
  return `/${segments.join('/')}`;
}

function sendFile(request: IncomingMessage, response: ServerResponse, file: string, headOnly: boolean): void {
  let size: number;
  let modifiedMs: number;
  try {
    ({ size, mtimeMs: modifiedMs } = statSync(file));
  } catch {
    sendError(response, 404, new StaticFilesError('CONCORD_E_UI_FILE_NOT_FOUND', `the dashboard's file ${file} is gone; reinstall Concord`));
    return;
  }
  const etag = `"${size.toString(16)}-${Math.floor(modifiedMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    'content-type': CONTENT_TYPES[extname(file)]!,
    'cache-control': 'no-cache',
    etag,
    'x-content-type-options': 'nosniff',
    ...(file.endsWith('.html') ? PAGE_SECURITY_HEADERS : {}),
  };
  if (request.headers['if-none-match'] === etag) {
    response.writeHead(304, headers).end();
    return;
  }
  response.writeHead(200, { ...headers, 'content-length': size });
  if (headOnly) {
    response.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => response.destroy());
  stream.pipe(response);
}

function sendError(response: ServerResponse, status: number, error: StaticFilesError): void {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff' }).end(body);
}
