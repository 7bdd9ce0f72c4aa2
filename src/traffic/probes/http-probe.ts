// HTTP check: a request on a fresh connection (so connection set-up is checked too, as HAProxy
// does), which passes when the status is in the expected ranges and, if asked, the first
// `bodyCheckBytes` of the body contain a substring or match a regular expression. The whole
// exchange (connect, headers, body prefix) must finish within the timeout.

import { request } from 'node:http';
import type { ProbeResult } from '../health/active-check.ts';
import { describeSocketError, onceSettled, systemClock, type Clock, type Probe, type ProbeTarget } from './probe.ts';
import { formatStatusRanges, statusInRanges, type StatusRanges } from './status-ranges.ts';

export interface HttpProbeOptions {
  method: string;
  path: string;
  /** Host header; the backend's address when undefined. */
  host: string | undefined;
  expectStatus: StatusRanges;
  expectBody: string | undefined;
  expectBodyRegex: RegExp | undefined;
  /** Only this many bytes of the body are read and checked. */
  bodyCheckBytes: number;
  timeoutMs: number;
}

export function httpProbe(options: HttpProbeOptions, clock: Clock = systemClock): Probe {
  const checksBody = options.expectBody !== undefined || options.expectBodyRegex !== undefined;
  return (target: ProbeTarget) => new Promise<ProbeResult>((resolve) => {
    const settle = onceSettled(clock(), clock, resolve);
    const req = request({
      host: target.host, port: target.port, method: options.method, path: options.path, agent: false,
      headers: { host: options.host ?? `${target.host}:${target.port}`, 'user-agent': 'concord-health-check', connection: 'close' },
    });
    const timer = setTimeout(() => {
      settle(false, `timed out after ${options.timeoutMs} ms`);
      req.destroy();
    }, options.timeoutMs);
    const finish = (ok: boolean, detail: string) => {
      clearTimeout(timer);
      settle(ok, detail);
      req.destroy();
    };
    req.once('error', (error) => finish(false, describeSocketError(error)));
    req.once('response', (response) => {
      const status = response.statusCode ?? 0;
      if (!statusInRanges(status, options.expectStatus)) {
        finish(false, `status ${status} (expected ${formatStatusRanges(options.expectStatus)})`);
        return;
      }
      if (!checksBody) {
        finish(true, `status ${status}`);
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      const judge = () => {
        const body = Buffer.concat(chunks, length).subarray(0, options.bodyCheckBytes).toString('utf8');
        const problem = bodyProblem(body, options);
        finish(problem === undefined, problem ?? `status ${status}, body matches`);
      };
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        if (length >= options.bodyCheckBytes) judge();
      });
      response.once('end', judge);
      response.once('error', (error) => finish(false, describeSocketError(error)));
    });
    req.end();
  });
}

function bodyProblem(body: string, options: HttpProbeOptions): string | undefined {
  if (options.expectBody !== undefined && !body.includes(options.expectBody)) {
    return `body does not contain ${JSON.stringify(options.expectBody)} within the first ${options.bodyCheckBytes} bytes`;
  }
  if (options.expectBodyRegex !== undefined && !options.expectBodyRegex.test(body)) {
    return `body does not match /${options.expectBodyRegex.source}/ within the first ${options.bodyCheckBytes} bytes`;
  }
  return undefined;
}
