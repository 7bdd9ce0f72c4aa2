// The etcd3 client's errors (gRPC statuses, etcd's messages, the circuit breaker's refusals) as
// CoordErrors with Concord's codes: "the store is not answering" (retry later, check the members)
// is told apart from "the store answered no" (the message is the store's).

import { GRPCDeadlineExceededError, GRPCUnavailableError, ClientClosedError } from 'etcd3';
import { CoordError } from './coord-store.ts';

function isUnavailable(error: unknown): boolean {
  if (error instanceof GRPCUnavailableError || error instanceof GRPCDeadlineExceededError) return true;
  const name = (error as { name?: unknown; constructor?: { name?: string } } | null)?.constructor?.name;
  // cockatiel's circuit breaker refuses calls to a host that failed repeatedly; gRPC may also fail
  // to connect before a status exists.
  if (name === 'BrokenCircuitError' || name === 'TaskCancelledError') return true;
  const message = String((error as Error | null)?.message ?? '');
  return /ECONNREFUSED|ECONNRESET|No connection established|Deadline exceeded|failed to connect|Connection dropped/i.test(message);
}

/** gRPC's message without its class prefix and its empty resolution notes. */
function cleaned(message: string): string {
  return message.replace(/^\w+Error: /, '').replace(/\s*Resolution note:\s*$/, '').replace(/Last error: Error: /, 'last error: ').trim();
}

/** The store's authentication and permission refusals, in words that say what to do. */
function authProblem(message: string): { code: 'CONCORD_E_STORE_AUTH_FAILED' | 'CONCORD_E_STORE_PERMISSION_DENIED'; text: string } | undefined {
  if (/permission denied/i.test(message)) return { code: 'CONCORD_E_STORE_PERMISSION_DENIED', text: 'the store\'s roles do not allow this user that (etcdserver: permission denied): grant the user a role with the permission, or act as a user who has it' };
  if (/user name is empty/i.test(message)) return { code: 'CONCORD_E_STORE_AUTH_FAILED', text: 'the store has authentication on and this client gave no user: pass --user NAME with --password or --password-file (or store.user and store.passwordFile in the configuration)' };
  if (/invalid auth token/i.test(message)) return { code: 'CONCORD_E_STORE_AUTH_FAILED', text: 'the store no longer accepts this client\'s token (it expired, or the member restarted): authenticate again' };
  if (/authentication failed|invalid user ID or password/i.test(message)) return { code: 'CONCORD_E_STORE_AUTH_FAILED', text: 'the store refused the user name or password' };
  return undefined;
}

export function toCoordError(error: unknown, what: string, timeoutMs: number): CoordError {
  if (error instanceof CoordError) return error;
  if (error instanceof ClientClosedError) return new CoordError('CONCORD_E_STORE_CLOSED', `${what}: the store client is closed`, { cause: error });
  const message = String((error as Error | null)?.message ?? error);
  if (isUnavailable(error)) {
    return new CoordError(
      'CONCORD_E_STORE_UNAVAILABLE',
      `${what}: the store is unreachable or did not answer within ${timeoutMs} ms (${cleaned(message)}); check that its members are running and that the endpoints are right`,
      { cause: error },
    );
  }
  const auth = authProblem(message);
  if (auth !== undefined) return new CoordError(auth.code, `${what}: ${auth.text}`, { cause: error });
  return new CoordError('CONCORD_E_STORE_REQUEST_FAILED', `${what}: the store refused the request: ${cleaned(message)}`, { cause: error });
}
