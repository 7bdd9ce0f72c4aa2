// Turns the TLS flags (etcd's names: --cert-file, --key-file, --trusted-ca-file, --client-cert-auth
// and their --peer- forms) into what the gRPC server and the peer transport take. Files are read
// once at start-up; an unreadable file is a configuration error that names the flag.

import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import type { TlsOptions } from 'node:tls';
import type { PeerDialTls } from '../transport/peer-connection.ts';
import { ConfigError } from './server-config.ts';
import type { ServerConfig, TlsFiles } from './server-config.ts';

export interface LoadedTls {
  /** For https:// client URLs; insecure credentials when no certificate is configured. */
  clientCredentials: ServerCredentials;
  /** For https:// peer URLs (the listening side). */
  peerServer?: TlsOptions;
  /** For dialing https:// peers (presents this member's certificate, verifies the peer's). */
  peerDial?: PeerDialTls;
}

export function loadTls(config: Pick<ServerConfig, 'clientTls' | 'peerTls'>): LoadedTls {
  const client = readTlsFiles(config.clientTls, '');
  const peer = readTlsFiles(config.peerTls, 'peer-');
  const clientCredentials = client
    ? ServerCredentials.createSsl(client.ca ?? null, [{ cert_chain: client.cert, private_key: client.key }], config.clientTls.clientCertAuth)
    : ServerCredentials.createInsecure();
  if (!peer) return { clientCredentials };
  return {
    clientCredentials,
    peerServer: {
      key: peer.key,
      cert: peer.cert,
      ...(peer.ca ? { ca: peer.ca } : {}),
      requestCert: config.peerTls.clientCertAuth,
      rejectUnauthorized: config.peerTls.clientCertAuth,
    },
    peerDial: {
      key: peer.key,
      cert: peer.cert,
      ...(peer.ca ? { ca: peer.ca } : {}),
      // Without a CA bundle there is nothing to verify the peer against (as etcd without
      // --peer-trusted-ca-file): the connection is encrypted, not authenticated.
      rejectUnauthorized: peer.ca !== undefined,
    },
  };
}

function readTlsFiles(files: TlsFiles, prefix: string): { cert: Buffer; key: Buffer; ca?: Buffer } | undefined {
  if (!files.certFile || !files.keyFile) return undefined;
  return {
    cert: readFlagFile(files.certFile, `--${prefix}cert-file`),
    key: readFlagFile(files.keyFile, `--${prefix}key-file`),
    ...(files.trustedCaFile ? { ca: readFlagFile(files.trustedCaFile, `--${prefix}trusted-ca-file`) } : {}),
  };
}

function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}
