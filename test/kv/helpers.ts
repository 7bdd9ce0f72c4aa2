// Small conveniences for the key-value tests: text keys and values, and error matchers that check
// both the stable Concord code and etcd's exact wire message.

import assert from 'node:assert/strict';
import type { KvErrorCode } from '../../src/kv/errors.ts';
import { KvError, KV_ERRORS } from '../../src/kv/errors.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function b(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Asserts that `action` throws the KvError with this code and the catalog's exact message. */
export function assertKvError(action: () => unknown, code: KvErrorCode, message?: string): KvError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof KvError, `expected KvError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  if (message !== undefined) assert.equal(caught.message, message);
  else assert.ok(caught.message.startsWith(KV_ERRORS[code].message));
  return caught;
}
