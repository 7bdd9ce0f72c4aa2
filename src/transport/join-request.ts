// A member started with --initial-cluster-state existing does not know its own ID nor the
// cluster's: MemberAdd chose them. It asks the members it was told about, over the peer port, for
// the cluster's membership, and finds its own entry by its advertised peer URLs (as etcd does).

import type { Frame } from './frame.ts';
import { FRAME_TYPES, PROTOCOL_VERSION, ProtocolError, decodeReject, encodeHello, parseJson } from './frame.ts';
import { PeerConnection, dial } from './peer-connection.ts';
import type { PeerDialTls } from './peer-connection.ts';

export interface JoinRequestOptions {
  url: URL;
  /** The joining member's advertised peer URLs. */
  peerUrls: readonly string[];
  tls?: PeerDialTls;
  timeoutMs: number;
}

/** Asks one member for the cluster's membership; resolves with its JSON answer. */
export async function requestJoinInfo(options: JoinRequestOptions): Promise<unknown> {
  const socket = await dial({ url: options.url, tls: options.tls, connectTimeoutMs: options.timeoutMs });
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      connection.close('join request finished');
      if (error) reject(error);
      else resolve(value);
    };
    const connection: PeerConnection = new PeerConnection(socket, (frame: Frame) => {
      if (frame.type === FRAME_TYPES.HELLO_OK) settle(undefined, parseJson(frame.payload, 'join answer'));
      else if (frame.type === FRAME_TYPES.HELLO_REJECT) settle(new Error(decodeReject(frame.payload).text));
      else throw new ProtocolError(`unexpected frame type ${frame.type} answering a join request`);
    }, options.timeoutMs);
    // The answer lists every member: allow it more room than a HELLO.
    connection.decoder.maxFrameBytes = 4 * 1024 * 1024;
    connection.onClose((reason) => settle(new Error(`${options.url.host} closed the connection: ${reason}`)));
    const timer = setTimeout(() => settle(new Error(`${options.url.host} did not answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    connection.write(FRAME_TYPES.HELLO, encodeHello({
      protocolVersion: PROTOCOL_VERSION, purpose: 'join', clusterId: 0n, fromId: 0n, toId: 0n, peerUrls: [...options.peerUrls],
    }));
  });
}
