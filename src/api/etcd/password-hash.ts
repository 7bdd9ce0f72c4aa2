// Password hashing for etcd's users, done by the member that receives the request, before anything
// is proposed: only the hash enters the Raft log, the snapshots and the other members, never the
// password (etcd 3.4 hashed inside the apply loop and wrote the plain password to its WAL).
//
// scrypt from node:crypto, with a 16-byte random salt per hash and the parameters the scrypt paper
// gives for interactive logins (N = 2^14, r = 8, p = 1: 16 MiB and tens of milliseconds per check,
// comparable to etcd's bcrypt cost 10). The hash never leaves Concord, so its format is ours:
//
//   format (1 byte, 1) | log2 N (1) | r (1) | p (1) | salt (16) | derived key (32)
//
// Verification recomputes the key with the parameters stored in the hash (so they can be raised
// later without invalidating existing users) and compares in constant time. Checking a user that
// does not exist costs the same as checking a wrong password, so timing does not tell which names
// exist.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const HASH_FORMAT = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const HEADER_BYTES = 4;
const HASH_BYTES = HEADER_BYTES + SALT_BYTES + KEY_BYTES;

export const SCRYPT_LOG2_N = 14;
export const SCRYPT_BLOCK_SIZE = 8;
export const SCRYPT_PARALLELIZATION = 1;
/** Bounds on parameters read back from a hash, so a damaged one cannot make a check take minutes. */
const MAX_LOG2_N = 20;
const MAX_BLOCK_SIZE = 32;
const MAX_PARALLELIZATION = 16;
/** etcd has no bound; bcrypt looks at 72 bytes at most. A longer password is refused, not truncated. */
export const MAX_PASSWORD_BYTES = 1024;

export interface ScryptParameters {
  log2N: number;
  blockSize: number;
  parallelization: number;
}

const DEFAULT_PARAMETERS: ScryptParameters = { log2N: SCRYPT_LOG2_N, blockSize: SCRYPT_BLOCK_SIZE, parallelization: SCRYPT_PARALLELIZATION };

function deriveKey(password: string, salt: Uint8Array, parameters: ScryptParameters): Promise<Buffer> {
  const { log2N, blockSize, parallelization } = parameters;
  const N = 2 ** log2N;
  // scrypt needs 128 * N * r bytes; node:crypto refuses more than maxmem, so allow exactly that plus slack.
  const maxmem = 128 * N * blockSize + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { N, r: blockSize, p: parallelization, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** A fresh salted hash of `password`. */
export async function hashPassword(password: string, parameters: ScryptParameters = DEFAULT_PARAMETERS): Promise<Uint8Array> {
  const salt = randomBytes(SALT_BYTES);
  const key = await deriveKey(password, salt, parameters);
  const hash = new Uint8Array(HASH_BYTES);
  hash.set([HASH_FORMAT, parameters.log2N, parameters.blockSize, parameters.parallelization]);
  hash.set(salt, HEADER_BYTES);
  hash.set(key, HEADER_BYTES + SALT_BYTES);
  return hash;
}

/** Whether `password` matches `hash`; false for a hash that is not ours (it matches nothing). */
export async function verifyPassword(password: string, hash: Uint8Array): Promise<boolean> {
  const parsed = parseHash(hash);
  if (parsed === undefined) {
    await verifyAgainstDecoy(password);
    return false;
  }
  const key = await deriveKey(password, parsed.salt, parsed.parameters);
  return timingSafeEqual(key, parsed.key);
}

let decoyHash: Promise<Uint8Array> | undefined;

/** Spends what a real check spends, for a user that does not exist; always false. */
export async function verifyAgainstDecoy(password: string): Promise<false> {
  decoyHash ??= hashPassword(randomBytes(SALT_BYTES).toString('hex'));
  const parsed = parseHash(await decoyHash)!;
  await deriveKey(password, parsed.salt, parsed.parameters);
  return false;
}

function parseHash(hash: Uint8Array): { parameters: ScryptParameters; salt: Uint8Array; key: Uint8Array } | undefined {
  if (hash.length !== HASH_BYTES || hash[0] !== HASH_FORMAT) return undefined;
  const parameters = { log2N: hash[1]!, blockSize: hash[2]!, parallelization: hash[3]! };
  const sane = parameters.log2N >= 1 && parameters.log2N <= MAX_LOG2_N && parameters.blockSize >= 1 && parameters.blockSize <= MAX_BLOCK_SIZE &&
    parameters.parallelization >= 1 && parameters.parallelization <= MAX_PARALLELIZATION;
  if (!sane) return undefined;
  return { parameters, salt: hash.subarray(HEADER_BYTES, HEADER_BYTES + SALT_BYTES), key: hash.subarray(HEADER_BYTES + SALT_BYTES) };
}
