// etcd's KV service (Range, Put, DeleteRange, Txn, Compact) over a Concord member. Writes go
// through Raft; reads are linearizable by default (a ReadIndex barrier first) and served from the
// local state machine when the request asks for a serializable read, as in etcd.
//
// With auth on, a read is checked here, against this member's auth state once the barrier is
// passed (as etcd checks in its API layer); a write carries its requester into the log and is
// checked when applied (auth/command-authorization.ts).

import type { ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { checkRangeRequest } from '../../kv/request-check.ts';
import type { KvCommand, KvCommandResponse } from '../../kv/types.ts';
import { toServiceError } from './grpc-errors.ts';
import type { HeaderSource, WireDeleteRangeRequest, WirePutRequest, WireRangeRequest, WireTxnRequest, WireInt64 } from './wire.ts';
import {
  deleteRangeRequestFromWire,
  deleteRangeResponseToWire,
  header,
  numberFromWire,
  putRequestFromWire,
  putResponseToWire,
  rangeRequestFromWire,
  rangeResponseToWire,
  txnRequestFromWire,
  txnResponseToWire,
} from './wire.ts';
import type { KvBackend } from './kv-backend.ts';
import type { AuthGate, CallIdentity } from './auth-gate.ts';

type Handler<Request> = (call: ServerUnaryCall<Request, unknown>, callback: sendUnaryData<unknown>) => void;

/** Runs a request handler and turns its outcome (value or error) into the gRPC callback. */
function unary<Request>(handle: (request: Request, caller: CallIdentity) => Promise<unknown>): Handler<Request> {
  return (call, callback) => {
    handle(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

export function kvService(backend: KvBackend, headers: HeaderSource, auth: AuthGate): UntypedServiceImplementation {
  const propose = async <T extends KvCommandResponse['type']>(command: KvCommand, type: T, caller: CallIdentity) => {
    const response = await backend.write(command, auth.requester(caller));
    if (response.type !== type) throw new Error(`a ${command.type} command answered with a ${response.type} response`);
    return response as Extract<KvCommandResponse, { type: T }>;
  };
  return {
    Range: unary(async (wire: WireRangeRequest, caller) => {
      const request = rangeRequestFromWire(wire);
      // A malformed request is refused as such before permissions are looked at, as etcd does.
      checkRangeRequest(request);
      if (!request.serializable) await backend.readBarrier();
      auth.checkRead(caller, request.key, request.rangeEnd);
      return rangeResponseToWire(backend.range(request), headers);
    }),
    Put: unary(async (wire: WirePutRequest, caller) => {
      const { response } = await propose({ type: 'put', request: putRequestFromWire(wire) }, 'put', caller);
      return putResponseToWire(response, headers);
    }),
    DeleteRange: unary(async (wire: WireDeleteRangeRequest, caller) => {
      const { response } = await propose({ type: 'deleteRange', request: deleteRangeRequestFromWire(wire) }, 'deleteRange', caller);
      return deleteRangeResponseToWire(response, headers);
    }),
    Txn: unary(async (wire: WireTxnRequest, caller) => {
      const { response } = await propose({ type: 'txn', request: txnRequestFromWire(wire) }, 'txn', caller);
      return txnResponseToWire(response, headers);
    }),
    Compact: unary(async (wire: { revision?: WireInt64; physical?: boolean }, caller) => {
      const revision = numberFromWire(wire.revision, 'revision');
      const { response } = await propose({ type: 'compact', request: { revision, physical: wire.physical ?? false } }, 'compact', caller);
      return { header: header(headers, response.header.revision) };
    }),
  };
}
