// Who a component is on the store, as etcdctl takes it: `--user name[:password]`, `--password`, and
// for services a password file (`--password-file`, or `store.passwordFile` in the configuration),
// so that a password need not sit in argv (visible in ps) or in a YAML file that is shared.
// Every problem is CONCORD_E_STORE_CREDENTIALS_INVALID with what to give instead; no message here
// contains a password.

import { readFileSync, statSync } from 'node:fs';
import { CoordError } from './coord-store.ts';
import type { StoreCredentials } from './store-auth.ts';

/** A password file larger than this is not a password file (a wrong path, say). */
export const MAX_PASSWORD_FILE_BYTES = 4_096;

export interface CredentialSources {
  /** `name` or `name:password` (etcdctl's --user). */
  user?: string;
  password?: string;
  passwordFile?: string;
}

function invalid(message: string): CoordError {
  return new CoordError('CONCORD_E_STORE_CREDENTIALS_INVALID', message);
}

/** The credentials the sources give, or undefined when no user is named. */
export function credentialsFrom(sources: CredentialSources): StoreCredentials | undefined {
  if (sources.user === undefined) {
    if (sources.password !== undefined || sources.passwordFile !== undefined) throw invalid('a password was given without a user: add --user NAME (store.user in the configuration)');
    return undefined;
  }
  const colon = sources.user.indexOf(':');
  const user = colon === -1 ? sources.user : sources.user.slice(0, colon);
  const inline = colon === -1 ? undefined : sources.user.slice(colon + 1);
  if (user === '') throw invalid('--user has an empty user name: give --user NAME or --user NAME:PASSWORD');
  const given = [inline, sources.password, sources.passwordFile].filter((value) => value !== undefined).length;
  if (given > 1) throw invalid(`user '${user}' was given more than one password: use one of --user NAME:PASSWORD, --password, --password-file`);
  if (given === 0) throw invalid(`user '${user}' needs a password: give --password-file FILE (or store.passwordFile), --password, or --user ${user}:PASSWORD`);
  const password = inline ?? sources.password ?? readPasswordFile(sources.passwordFile!);
  if (password === '') throw invalid(`the password of user '${user}' is empty`);
  return { user, password };
}

/** The file's text without one trailing newline (as `echo secret > file` writes it). */
export function readPasswordFile(file: string): string {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_PASSWORD_FILE_BYTES) throw invalid(`the password file ${file} is ${size} bytes; a password file holds the password alone (at most ${MAX_PASSWORD_FILE_BYTES} bytes)`);
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof CoordError) throw error;
    throw invalid(`cannot read the password file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}
