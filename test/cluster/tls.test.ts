// TLS between members and for clients, with certificates made at test time: mutual TLS on the peer
// port (a member without a certificate signed by the cluster's CA is refused) and on the client
// port (etcdctl needs a client certificate when --client-cert-auth is on).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { stringify } from 'yaml';
import { resolveServerConfig, settingsFromFile, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { runEtcdctl } from '../compat/etcdctl.ts';
import { makeCa, makeSignedCertificate } from '../support/certificates.ts';
import type { CertificateFiles } from '../support/certificates.ts';
import { freePort } from '../support/free-port.ts';
import { useTestDataRoot, waitFor } from '../support/store-member.ts';

const root = useTestDataRoot('concord-tls-');

test('three members over mutual TLS: they form a cluster; a peer without a valid certificate is refused; clients need theirs', async () => {
  const ca = makeCa(root.dir, 'cluster-ca');
  const certificates = ['t1', 't2', 't3'].map((name) => ({ name, ...makeSignedCertificate(root.dir, name, ca) }));
  const client = makeSignedCertificate(root.dir, 'client', ca);
  const ports = await Promise.all(certificates.map(() => freePort()));
  const initialCluster = certificates.map((member, i) => `${member.name}=https://127.0.0.1:${ports[i]}`).join(',');
  const logs: string[] = [];
  // The first two members take their certificate paths as flags, the third from its config file.
  const configFor = (member: (typeof certificates)[number], i: number) => {
    const placement = { name: member.name, dataDir: join(root.dir, member.name), listenClientUrls: 'https://127.0.0.1:0', listenPeerUrls: `https://127.0.0.1:${ports[i]}`, initialCluster };
    if (i < 2) {
      return resolveServerConfig({}, settingsFromFlags({
        ...placement,
        certFile: member.cert, keyFile: member.key, trustedCaFile: ca.cert, clientCertAuth: 'true',
        peerCertFile: member.cert, peerKeyFile: member.key, peerTrustedCaFile: ca.cert, peerClientCertAuth: 'true',
      }));
    }
    const file = join(root.dir, `${member.name}.yaml`);
    writeFileSync(file, stringify({ server: {
      certFile: member.cert, keyFile: member.key, trustedCaFile: ca.cert, clientCertAuth: true,
      peerCertFile: member.cert, peerKeyFile: member.key, peerTrustedCaFile: ca.cert, peerClientCertAuth: true,
    } }));
    return resolveServerConfig(settingsFromFile(file), settingsFromFlags(placement));
  };
  const servers = await Promise.all(certificates.map((member, i) => StoreServer.start(configFor(member, i), {
    logger: { info: () => {}, warn: (line) => logs.push(line), error: (line) => logs.push(line) },
  })));
  try {
    await waitFor('a leader over TLS', () => servers.some((server) => server.member.isLeader()), 10_000);
    const tlsArgs = ['--cacert', ca.cert, '--cert', client.cert, '--key', client.key];
    const put = await runEtcdctl({ endpoint: `https://${servers[0]!.clientAddresses[0]}`, args: [...tlsArgs, 'put', 'secure', 'yes'] });
    assert.equal(put.exitCode, 0, put.stderr);
    const get = await runEtcdctl({ endpoint: `https://${servers[2]!.clientAddresses[0]}`, args: [...tlsArgs, 'get', 'secure'] });
    assert.match(get.stdout, /yes/);
    // A client without a certificate, at a member configured by flags and at the one configured by file.
    for (const server of [servers[0]!, servers[2]!]) {
      const noClientCert = await runEtcdctl({ endpoint: `https://${server.clientAddresses[0]}`, args: ['--cacert', ca.cert, '--dial-timeout=2s', '--command-timeout=3s', 'get', 'secure'] });
      assert.notEqual(noClientCert.exitCode, 0, `a client without a certificate is refused by ${server.clientAddresses[0]}`);
    }

    // On the peer port: no certificate, and a certificate from another CA.
    const strangerCa = makeCa(root.dir, 'stranger-ca');
    const stranger = makeSignedCertificate(root.dir, 'stranger', strangerCa);
    assert.equal(await peerHandshake(ports[0]!, ca, undefined), 'refused', 'no client certificate');
    assert.equal(await peerHandshake(ports[0]!, ca, stranger), 'refused', 'a certificate another CA signed');
    assert.equal(await peerHandshake(ports[0]!, ca, certificates[1]!), 'accepted', 'a member\'s own certificate');
    assert.equal(await peerHandshake(ports[2]!, ca, undefined), 'refused', 'no client certificate, at the member configured by file');
    await waitFor('the refusals are logged', () => logs.filter((line) => /refused a peer connection .*TLS/.test(line)).length >= 2);
    const after = await runEtcdctl({ endpoint: `https://${servers[1]!.clientAddresses[0]}`, args: [...tlsArgs, 'put', 'still', 'serving'] });
    assert.equal(after.exitCode, 0, after.stderr);
  } finally {
    await Promise.all(servers.map((server) => server.stop({ handOverLeadership: false })));
  }
});

/** Whether a TLS handshake with the peer port succeeds with the given client certificate. */
function peerHandshake(port: number, ca: CertificateFiles, certificate: CertificateFiles | undefined): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1', port, ca: readFileSync(ca.cert),
      ...(certificate ? { cert: readFileSync(certificate.cert), key: readFileSync(certificate.key) } : {}),
    });
    let settled = false;
    const settle = (outcome: 'accepted' | 'refused') => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(outcome);
    };
    // With TLS 1.3 the server checks the client certificate after the client considers the
    // handshake done: a refusal shows as the connection closing instead of staying open.
    socket.once('secureConnect', () => setTimeout(() => settle('accepted'), 300));
    socket.once('error', () => settle('refused'));
    socket.once('close', () => settle('refused'));
  });
}
