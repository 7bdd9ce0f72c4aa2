// The exec provider: operator-supplied commands for launch, terminate and list, so Concord drives a
// cloud autoscaling group, kubectl or an in-house tool without code changes.
//
//   launch     prints one JSON object:  {"id": "i-0abc", "address": "10.0.0.7:8080"}
//   list       prints one JSON array:   [{"id": "i-0abc", "address": "10.0.0.7:8080", "launchVersion": "v3", "launchedAtMs": 1700000000000}]
//   terminate  exits 0 (its output is ignored)
//
// Each command gets {requestId}, {instanceId}, {launchVersion}, {fencingToken} and {pool} in its
// template, and the same as environment variables (CONCORD_REQUEST_ID, CONCORD_INSTANCE_ID,
// CONCORD_LAUNCH_VERSION, CONCORD_FENCING_TOKEN, CONCORD_POOL), so the tool can deduplicate on the
// request id across controller restarts and refuse stale fencing tokens itself. No shell runs
// unless the template calls one.
//
// A command that fails (non-zero exit, timeout, output too large or not of the documented shape)
// is an event, retried with exponential backoff up to `retries` times; the call then rejects with a
// coded ProviderError. Nothing here throws past the returned promise, so a failing tool never
// takes Concord down.

import { spawn } from 'node:child_process';
import { z } from 'zod';
import { ActionLedger } from './action-ledger.ts';
import { renderCommand } from './command-template.ts';
import {
  ProviderError, type ActionLogEntry, type InstanceRecord, type LaunchRequest, type Provider, type ProviderErrorCode, type ProviderEvent, type TerminateRequest,
} from './provider.ts';
import { ReadinessBoard } from './readiness.ts';

export interface ExecProviderOptions {
  pool: string;
  launch: string;
  terminate: string;
  list: string;
  cwd?: string;
  env?: Record<string, string>;
  /** A command running longer is killed (its whole process group) and counts as failed. */
  timeoutMs: number;
  /** Further attempts after a failure. */
  retries: number;
  /** Backoff before the first retry; doubles with each further one. */
  retryBackoffMs: number;
  /** Largest stdout (and stderr) a command may print. */
  maxOutputBytes: number;
  nowMs?: () => number;
  onEvent?: (event: ProviderEvent) => void;
}

const addressSchema = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "address must be 'host:port'");
const launchOutputSchema = z.object({ id: z.string().min(1, 'id must not be empty'), address: addressSchema }).loose();
const listOutputSchema = z.array(
  z.object({
    id: z.string().min(1, 'id must not be empty'),
    address: addressSchema,
    launchVersion: z.string().optional(),
    launchedAtMs: z.number().int().nonnegative().optional(),
  }).loose(),
);

interface CommandResult {
  stdout: string;
}

class CommandFailure extends Error {
  readonly code: ProviderErrorCode;

  constructor(code: ProviderErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export class ExecProvider implements Provider {
  readonly kind = 'exec';
  private readonly options: ExecProviderOptions;
  private readonly ledger: ActionLedger;
  private readonly readiness = new ReadinessBoard();
  private readonly nowMs: () => number;
  /** What this provider launched, for launch versions and times the list command may not report. */
  private readonly known = new Map<string, InstanceRecord>();

  constructor(options: ExecProviderOptions) {
    this.options = options;
    this.nowMs = options.nowMs ?? Date.now;
    this.ledger = new ActionLedger(this.nowMs, options.onEvent);
    const sample = { requestId: 'r', instanceId: 'i', launchVersion: 'v', fencingToken: '0', pool: options.pool };
    for (const template of [options.launch, options.terminate, options.list]) renderCommand(template, sample);
  }

  async list(): Promise<InstanceRecord[]> {
    const { stdout } = await this.runWithRetries('list', this.options.list, { requestId: 'list', instanceId: '', launchVersion: '', fencingToken: '0' });
    const listed = this.parse('list', stdout, listOutputSchema);
    return listed.map((entry) => {
      const known = this.known.get(entry.id);
      return {
        id: entry.id,
        address: entry.address,
        launchVersion: entry.launchVersion ?? known?.launchVersion ?? 'unknown',
        launchedAtMs: entry.launchedAtMs ?? known?.launchedAtMs ?? this.nowMs(),
        ready: this.readiness.isReady(entry.id),
      };
    });
  }

  launch(request: LaunchRequest): Promise<InstanceRecord> {
    return this.ledger.run('launch', request.requestId, request.fencingToken, async () => {
      const values = { requestId: request.requestId, instanceId: '', launchVersion: request.launchVersion, fencingToken: request.fencingToken.toString() };
      const { stdout } = await this.runWithRetries('launch', this.options.launch, values);
      const launched = this.parse('launch', stdout, launchOutputSchema);
      const record: InstanceRecord = { id: launched.id, address: launched.address, launchVersion: request.launchVersion, launchedAtMs: this.nowMs(), ready: false };
      this.known.set(record.id, record);
      this.ledger.event({ atMs: this.nowMs(), kind: 'launched', message: `${record.id} launched at ${record.address}`, instanceId: record.id, requestId: request.requestId });
      return record;
    }, (record) => record.id);
  }

  terminate(request: TerminateRequest): Promise<void> {
    return this.ledger.run('terminate', request.requestId, request.fencingToken, async () => {
      const values = { requestId: request.requestId, instanceId: request.instanceId, launchVersion: this.known.get(request.instanceId)?.launchVersion ?? '', fencingToken: request.fencingToken.toString() };
      await this.runWithRetries('terminate', this.options.terminate, values);
      this.known.delete(request.instanceId);
      this.readiness.forget(request.instanceId);
      this.ledger.event({ atMs: this.nowMs(), kind: 'terminated', message: `${request.instanceId} terminated`, instanceId: request.instanceId, requestId: request.requestId });
    }, () => request.instanceId);
  }

  fence(fencingToken: bigint): Promise<void> {
    return this.ledger.fence(fencingToken);
  }

  reportReadiness(instanceId: string, ready: boolean): void {
    if (this.readiness.report(instanceId, ready)) {
      this.ledger.event({ atMs: this.nowMs(), kind: ready ? 'ready' : 'not-ready', message: `${instanceId} reported ${ready ? 'ready' : 'not ready'}`, instanceId });
    }
  }

  isReady(instanceId: string): boolean {
    return this.readiness.isReady(instanceId);
  }

  waitUntilReady(instanceId: string, timeoutMs: number): Promise<boolean> {
    return this.readiness.waitUntilReady(instanceId, timeoutMs);
  }

  actionLog(): readonly ActionLogEntry[] {
    return this.ledger.entries();
  }

  events(): readonly ProviderEvent[] {
    return this.ledger.events();
  }

  /** The instances belong to the operator's system: closing leaves them running. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------

  private parse<T>(command: 'launch' | 'list', stdout: string, schema: z.ZodType<T>): T {
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch {
      throw this.failed('CONCORD_E_PROVIDER_OUTPUT_INVALID', command, `printed no JSON (got '${stdout.trim().slice(0, 200)}'); see the exec provider's output format in docs/autoscaling.md`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'output'}: ${issue.message}`).join('; ');
      throw this.failed('CONCORD_E_PROVIDER_OUTPUT_INVALID', command, `printed JSON of the wrong shape (${problems}); see docs/autoscaling.md`);
    }
    return parsed.data;
  }

  private failed(code: ProviderErrorCode, command: string, detail: string): ProviderError {
    const message = `exec provider ${command} command for pool ${this.options.pool} ${detail}`;
    this.ledger.event({ atMs: this.nowMs(), kind: 'command-failed', message });
    return new ProviderError(code, message);
  }

  private async runWithRetries(command: 'launch' | 'terminate' | 'list', template: string, values: Record<string, string>): Promise<CommandResult> {
    // A template that cannot be rendered is no transient failure: refused at once.
    const argv = renderCommand(template, { ...values, pool: this.options.pool });
    const attempts = this.options.retries + 1;
    let lastFailure: CommandFailure | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.runOnce(argv, values);
      } catch (error) {
        lastFailure = error instanceof CommandFailure ? error : new CommandFailure('CONCORD_E_PROVIDER_COMMAND_FAILED', (error as Error).message);
        this.ledger.event({
          atMs: this.nowMs(),
          kind: 'command-failed',
          message: `exec provider ${command} command for pool ${this.options.pool} failed (attempt ${attempt} of ${attempts}): ${lastFailure.message}`,
          requestId: values.requestId,
        });
        if (attempt < attempts) await sleep(this.options.retryBackoffMs * 2 ** (attempt - 1));
      }
    }
    throw new ProviderError(lastFailure!.code, `exec provider ${command} command for pool ${this.options.pool} failed ${attempts} times; last: ${lastFailure!.message}`);
  }

  private runOnce(argv: string[], values: Record<string, string>): Promise<CommandResult> {
    const env = {
      ...process.env,
      ...this.options.env,
      CONCORD_POOL: this.options.pool,
      CONCORD_REQUEST_ID: values.requestId,
      CONCORD_INSTANCE_ID: values.instanceId,
      CONCORD_LAUNCH_VERSION: values.launchVersion,
      CONCORD_FENCING_TOKEN: values.fencingToken,
    };
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: this.options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const sizes = { out: 0, err: 0 };
      let failure: CommandFailure | undefined;
      const kill = (reason: CommandFailure) => {
        failure ??= reason;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => kill(new CommandFailure('CONCORD_E_PROVIDER_COMMAND_TIMEOUT', `'${argv.join(' ')}' ran past timeoutMs (${this.options.timeoutMs} ms) and was killed`)), this.options.timeoutMs);
      const collect = (chunks: Buffer[], which: 'out' | 'err') => (chunk: Buffer) => {
        sizes[which] += chunk.length;
        if (sizes[which] > this.options.maxOutputBytes) {
          kill(new CommandFailure('CONCORD_E_PROVIDER_OUTPUT_TOO_LARGE', `'${argv.join(' ')}' printed more than maxOutputBytes (${this.options.maxOutputBytes}) and was killed`));
          return;
        }
        chunks.push(chunk);
      };
      child.stdout.on('data', collect(out, 'out'));
      child.stderr.on('data', collect(err, 'err'));
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new CommandFailure('CONCORD_E_PROVIDER_COMMAND_FAILED', `cannot run '${argv[0]}': ${error.message}`));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (failure !== undefined) return reject(failure);
        if (code !== 0) {
          const stderr = Buffer.concat(err).toString('utf8').trim().slice(-500);
          return reject(new CommandFailure('CONCORD_E_PROVIDER_COMMAND_FAILED', `'${argv.join(' ')}' exited with ${signal === null ? `code ${code}` : `signal ${signal}`}${stderr ? `: ${stderr}` : ''}`));
        }
        resolve({ stdout: Buffer.concat(out).toString('utf8') });
      });
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
