// Every method of the etcd services, wrapped so that a call with a token the member does not know
// yet waits until the member has caught up (AuthGate.catchUpFor) before its handler runs: the token
// may come from an Authenticate through another member that this one has not applied yet.

import type { sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import type { AuthGate, CallIdentity } from './auth-gate.ts';
import { toServiceError } from './grpc-errors.ts';

/** What the wrapper needs of the gate (AuthGate has it; tests give their own). */
export type TokenCatchUp = Pick<AuthGate, 'catchUpFor'>;

/**
 * The service's methods, each first waiting, for a call with a token this member does not know
 * yet, until the member has caught up (AuthGate.catchUpFor); every other call goes straight on.
 */
export function awaitingTokenCatchUp(implementation: UntypedServiceImplementation, auth: TokenCatchUp): UntypedServiceImplementation {
  const wrapped: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(implementation)) {
    // Every grpc-js handler takes the call first; unary ones take their callback second.
    const handler = method as unknown as (call: CallIdentity, callback?: sendUnaryData<unknown>) => void;
    const awaiting = (call: CallIdentity, callback?: sendUnaryData<unknown>): void => {
      const caughtUp = auth.catchUpFor(call);
      if (caughtUp === undefined) {
        handler(call, callback);
        return;
      }
      caughtUp.then(() => {
        // A stream cancelled while it waited has told its listeners already: the handler would keep it forever.
        if ((call as Partial<{ cancelled: boolean }>).cancelled === true) return;
        handler(call, callback);
      }).catch((error: unknown) => failCall(call, callback, error));
    };
    wrapped[name] = awaiting as unknown as UntypedServiceImplementation[string];
  }
  return wrapped;
}

/** A handler that threw once started late: its call ends with the error, as grpc-js ends a call whose handler throws. */
function failCall(call: CallIdentity, callback: sendUnaryData<unknown> | undefined, error: unknown): void {
  if (callback !== undefined) callback(toServiceError(error));
  // Server streams end with the status of an 'error' event (grpc-js's ServerWritableStreamImpl and ServerDuplexStreamImpl).
  else (call as unknown as EventEmitter).emit('error', toServiceError(error));
}
