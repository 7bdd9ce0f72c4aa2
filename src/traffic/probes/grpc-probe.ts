// gRPC check: the standard health protocol (grpc.health.v1.Health/Check). It passes when the
// server answers SERVING for the configured service ('' asks about the server as a whole). The two
// messages are tiny, so they are encoded here by hand rather than loaded from a .proto file:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3

import { Client, credentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { ProbeResult } from '../health/active-check.ts';
import { onceSettled, systemClock, type Clock, type Probe, type ProbeTarget } from './probe.ts';

const SERVING_STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
const SERVING = 1;

export interface GrpcProbeOptions {
  /** The service name to ask about; '' for the whole server. */
  service: string;
  timeoutMs: number;
}

export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  if (name.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(name.length), name]);
}

export function decodeHealthCheckResponse(bytes: Buffer): number {
  let offset = 0;
  let status = 0;
  while (offset < bytes.length) {
    const [key, afterKey] = decodeVarint(bytes, offset);
    const wireType = key & 7;
    if (wireType === 0) {
      const [value, next] = decodeVarint(bytes, afterKey);
      if (key >>> 3 === 1) status = value;
      offset = next;
    } else if (wireType === 2) {
      const [length, next] = decodeVarint(bytes, afterKey);
      offset = next + length;
    } else {
      throw new Error(`unexpected protobuf wire type ${wireType} in a health response`);
    }
  }
  return status;
}

function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function decodeVarint(bytes: Buffer, start: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let offset = start; offset < bytes.length && shift < 35; offset++) {
    const byte = bytes[offset]!;
    value |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value >>> 0, offset + 1];
    shift += 7;
  }
  throw new Error('truncated varint in a health response');
}

export function grpcProbe(options: GrpcProbeOptions, clock: Clock = systemClock): Probe {
  return (target: ProbeTarget) => new Promise<ProbeResult>((resolve) => {
    const settle = onceSettled(clock(), clock, resolve);
    const client = new Client(`${target.host}:${target.port}`, credentials.createInsecure());
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (service: string) => encodeHealthCheckRequest(service),
      (bytes: Buffer) => decodeHealthCheckResponse(bytes),
      options.service,
      { deadline: Date.now() + options.timeoutMs },
      (error: ServiceError | null, status?: number) => {
        client.close();
        if (error) {
          const detail = error.code === GrpcStatus.DEADLINE_EXCEEDED ? `timed out after ${options.timeoutMs} ms` : `gRPC ${GrpcStatus[error.code] ?? error.code}: ${error.details}`;
          settle(false, detail);
          return;
        }
        const name = SERVING_STATUS_NAMES[status ?? 0] ?? `status ${status}`;
        settle(status === SERVING, name);
      },
    );
  });
}
