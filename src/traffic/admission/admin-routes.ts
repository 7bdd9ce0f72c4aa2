// The operator's view of admission control on the proxy's admin port:
//
//   GET /shed                  every pool's state (limit, in flight, queue, RTTs, override) and recent events
//   PUT /shed/override         {"pool": "web", "mode": "off" | "fixed" | "configured", "limit": 50}
//                              (without "pool": every pool). "off" stops all shedding, "fixed" pins
//                              the concurrency limit, "configured" returns to the configured algorithm.
//
// handleShedAdmin answers these paths and returns false for any other, so the proxy's admin server
// can try it before its own routes. The admin port itself is never behind admission control.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Override } from '../shed/admission-controller.ts';
import type { PoolAdmission } from './admission.ts';

/** An override request is a few dozen bytes; anything much larger is not one. */
export const MAX_OVERRIDE_BODY_BYTES = 4096;

const overrideBody = z.discriminatedUnion('mode', [
  z.object({ pool: z.string().optional(), mode: z.literal('configured') }).strict(),
  z.object({ pool: z.string().optional(), mode: z.literal('off') }).strict(),
  z.object({ pool: z.string().optional(), mode: z.literal('fixed'), limit: z.number().int().min(1).max(1_000_000) }).strict(),
]);

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value), 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_OVERRIDE_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describeState(admissions: ReadonlyMap<string, PoolAdmission>): unknown {
  return {
    pools: [...admissions.values()].map((admission) => ({ pool: admission.pool, ...admission.snapshot() })),
    events: [...admissions.values()].flatMap((admission) => admission.recentEvents()).sort((a, b) => a.atMs - b.atMs),
  };
}

async function applyOverride(req: IncomingMessage, res: ServerResponse, admissions: ReadonlyMap<string, PoolAdmission>): Promise<void> {
  const text = await readBody(req);
  if (text === undefined) return sendError(res, 413, `the body is over ${MAX_OVERRIDE_BODY_BYTES} bytes; send {"mode": ...} only`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return sendError(res, 400, 'the body is not JSON; send {"pool": "NAME", "mode": "off" | "fixed" | "configured", "limit": N}');
  }
  const parsed = overrideBody.safeParse(json);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
    return sendError(res, 400, `${detail}; send {"pool": "NAME", "mode": "off" | "fixed" | "configured", "limit": N (with fixed)}`);
  }
  const { pool, ...override } = parsed.data;
  const targets = pool === undefined ? [...admissions.values()] : [admissions.get(pool)].filter((a) => a !== undefined);
  if (targets.length === 0) return sendError(res, 404, `no pool named '${pool}'; pools: ${[...admissions.keys()].join(', ') || '(none)'}`);
  for (const admission of targets) admission.setOverride(override as Override);
  sendJson(res, 200, describeState(new Map(targets.map((admission) => [admission.pool, admission]))));
}

/** Answers /shed and /shed/override; false for other paths. */
export function handleShedAdmin(req: IncomingMessage, res: ServerResponse, admissions: ReadonlyMap<string, PoolAdmission>): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/shed') {
    if (req.method !== 'GET') sendError(res, 405, 'use GET /shed');
    else sendJson(res, 200, describeState(admissions));
    return true;
  }
  if (path === '/shed/override') {
    if (req.method !== 'PUT' && req.method !== 'POST') sendError(res, 405, 'use PUT /shed/override with a JSON body');
    else applyOverride(req, res, admissions).catch((error: unknown) => sendError(res, 500, `override failed: ${String(error)}`));
    return true;
  }
  return false;
}
