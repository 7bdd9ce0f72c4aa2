// The one way an etcd service runs a unary method: the handler's value answers the call, and what
// it throws, at once or through its promise, ends the call with the status etcd would send for the
// same condition (toServiceError).

import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { CallIdentity } from './auth-gate.ts';
import { toServiceError } from './grpc-errors.ts';

export type UnaryHandler<Request> = (call: ServerUnaryCall<Request, unknown>, callback: sendUnaryData<unknown>) => void;

export function unary<Request>(handle: (request: Request, caller: CallIdentity) => Promise<unknown>): UnaryHandler<Request> {
  return (call, callback) => {
    let answer: Promise<unknown>;
    try {
      answer = handle(call.request, call);
    } catch (error) {
      // A handler that is not an async function may throw before it has a promise.
      callback(toServiceError(error));
      return;
    }
    answer.then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}
