// etcd's KV service (Range, Put, DeleteRange, Txn, Compact) over a Concord member. Writes go
// through Raft; reads are linearizable by default (a ReadIndex barrier first) and served from the
// local state machine when the request asks for a serializable read, as in etcd.

import type { ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
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

type Handler<Request> = (call: ServerUnaryCall<Request, unknown>, callback: sendUnaryData<unknown>) => void;

/** Runs a request handler and turns its outcome (value or error) into the gRPC callback. */
function unary<Request>(handle: (request: Request) => Promise<unknown>): Handler<Request> {
  return (call, callback) => {
    handle(call.request).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

export function kvService(backend: KvBackend, headers: HeaderSource): UntypedServiceImplementation {
  const propose = async <T extends KvCommandResponse['type']>(command: KvCommand, type: T) => {
    const response = await backend.write(command);
    if (response.type !== type) throw new Error(`a ${command.type} command answered with a ${response.type} response`);
    return response as Extract<KvCommandResponse, { type: T }>;
  };
  return {
    Range: unary(async (wire: WireRangeRequest) => {
      const request = rangeRequestFromWire(wire);
      if (!request.serializable) await backend.readBarrier();
      return rangeResponseToWire(backend.range(request), headers);
    }),
    Put: unary(async (wire: WirePutRequest) => {
      const { response } = await propose({ type: 'put', request: putRequestFromWire(wire) }, 'put');
      return putResponseToWire(response, headers);
    }),
    DeleteRange: unary(async (wire: WireDeleteRangeRequest) => {
      const { response } = await propose({ type: 'deleteRange', request: deleteRangeRequestFromWire(wire) }, 'deleteRange');
      return deleteRangeResponseToWire(response, headers);
    }),
    Txn: unary(async (wire: WireTxnRequest) => {
      const { response } = await propose({ type: 'txn', request: txnRequestFromWire(wire) }, 'txn');
      return txnResponseToWire(response, headers);
    }),
    Compact: unary(async (wire: { revision?: WireInt64; physical?: boolean }) => {
      const revision = numberFromWire(wire.revision, 'revision');
      const { response } = await propose({ type: 'compact', request: { revision, physical: wire.physical ?? false } }, 'compact');
      return { header: header(headers, response.header.revision) };
    }),
  };
}
