// The flags every command that talks to the coordination store takes: where it is (`--store` in
// Concord's URL form, or `--endpoints` in etcdctl's form), etcdctl's TLS flags, and who to be on a
// store with authentication on (etcdctl's --user and --password, and --password-file for services).

import type { Command } from 'commander';
import { EtcdCoordStore } from '../coord/etcd-coord-store.ts';
import { CoordError } from '../coord/coord-store.ts';
import { parseStoreLocation, STORE_URL_EXAMPLE } from '../coord/store-url.ts';
import { credentialsFrom } from '../coord/store-credentials.ts';

export const DEFAULT_STORE_ENDPOINTS = '127.0.0.1:2379';

export interface StoreFlagValues {
  store?: string;
  endpoints?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  user?: string;
  password?: string;
  passwordFile?: string;
}

export function addStoreOptions(command: Command): Command {
  return command
    .option('--store <url>', `the coordination store: ${STORE_URL_EXAMPLE}`)
    .option('--endpoints <list>', `the same in etcdctl's form: host:port,host:port (default ${DEFAULT_STORE_ENDPOINTS})`)
    .option('--cacert <file>', 'CA certificate to verify the store (TLS: etcds:// or https://)')
    .option('--cert <file>', 'client certificate, for stores that require one')
    .option('--key <file>', 'the client certificate\'s key')
    .option('--user <name[:password]>', 'the store user to act as, when the store has authentication on')
    .option('--password <password>', 'the user\'s password (visible to other local users in ps: prefer --password-file)')
    .option('--password-file <file>', 'a file holding the user\'s password (one trailing newline is ignored)');
}

/** Connects to the store the flags name; throws CONCORD_E_STORE_URL_INVALID on bad flags. */
export function openStore(values: StoreFlagValues): EtcdCoordStore {
  if (values.store !== undefined && values.endpoints !== undefined) {
    throw new CoordError('CONCORD_E_STORE_URL_INVALID', '--store and --endpoints name the same thing: give one of them');
  }
  const location = parseStoreLocation(values.store ?? values.endpoints ?? DEFAULT_STORE_ENDPOINTS, { caFile: values.cacert, certFile: values.cert, keyFile: values.key });
  const credentials = credentialsFrom({ user: values.user, password: values.password, passwordFile: values.passwordFile });
  return new EtcdCoordStore(location, credentials === undefined ? {} : { credentials });
}

/** Exit code for an error: 2 for what the user can fix in the command line or config, 1 otherwise. */
export function exitCodeFor(error: unknown): number {
  const code = String((error as { code?: unknown }).code ?? '');
  return code === 'CONCORD_E_STORE_URL_INVALID' || code === 'CONCORD_E_STORE_CREDENTIALS_INVALID' || code === 'CONCORD_E_CONFIG_INVALID' || code === 'CONCORD_E_FREEZE_INVALID' ? 2 : 1;
}

/**
 * Opens the store the flags name, runs `run`, and closes it; an error becomes one line on stderr
 * (`concord COMMAND: what went wrong`) and the exit code of exitCodeFor.
 */
export async function withStore(command: string, values: StoreFlagValues, setExitCode: (code: number) => void, run: (store: EtcdCoordStore) => Promise<void>): Promise<void> {
  let store: EtcdCoordStore | undefined;
  try {
    store = openStore(values);
    await run(store);
  } catch (error) {
    process.stderr.write(`concord ${command}: ${(error as Error).message}\n`);
    setExitCode(exitCodeFor(error));
  } finally {
    store?.close();
  }
}
