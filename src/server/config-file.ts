// Reads a YAML config file as untrusted input: bounded in size before it is read (a wrong path such
// as /dev/zero or a log file must not be read into memory), strictly UTF-8 (a stray Latin-1 byte
// is named by its offset instead of becoming U+FFFD inside a host name), and parsed with the alias
// limit named, so an alias bomb ("billion laughs") is refused rather than expanded. Every problem is
// one line that names the file and where in it the problem is.

import { closeSync, openSync, readSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from './server-config.ts';

/** The largest config file read. Real ones are a few kilobytes; this is far above any of them. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
/** YAML aliases allowed in one file (the yaml package's default, named here); more is an alias bomb. */
export const MAX_CONFIG_ALIAS_COUNT = 100;

/** Reads and decodes the file at `path` (bounded, strict UTF-8); throws a one-line ConfigError for any problem. */
export function readConfigFileText(path: string): string {
  return decodeUtf8(path, readBounded(path));
}

/** Reads, decodes and parses the YAML file at `path`; throws a one-line ConfigError for any problem. */
export function readYamlConfigFile(path: string): unknown {
  const text = readConfigFileText(path);
  try {
    const document = parseDocument(text, { prettyErrors: false, logLevel: 'silent' });
    // A warning (an unknown tag, a tag on the wrong kind of node) means part of the file was read
    // as something else than written: refused like an error, instead of a stray stderr line.
    const problem = document.errors[0] ?? document.warnings[0];
    if (problem) throw problem;
    return document.toJS({ maxAliasCount: MAX_CONFIG_ALIAS_COUNT });
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML${yamlErrorPlace(text, error)}: ${firstLine((error as Error).message)}`);
  }
}

/** Reads at most MAX_CONFIG_FILE_BYTES + 1 bytes: enough to know the file is too large, whatever fstat says. */
function readBounded(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${firstLine((error as Error).message)}`);
  }
  try {
    const buffer = Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1);
    let filled = 0;
    while (filled < buffer.byteLength) {
      const read = readSync(fd, buffer, filled, buffer.byteLength - filled, null);
      if (read === 0) break;
      filled += read;
    }
    if (filled > MAX_CONFIG_FILE_BYTES) {
      throw new ConfigError(
        `config file ${path} is larger than ${MAX_CONFIG_FILE_BYTES} bytes (MAX_CONFIG_FILE_BYTES); a config file is a few kilobytes: check the path`,
      );
    }
    return buffer.subarray(0, filled);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot read config file ${path}: ${firstLine((error as Error).message)}`);
  } finally {
    closeSync(fd);
  }
}

function decodeUtf8(path: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = firstInvalidUtf8Offset(bytes);
    throw new ConfigError(`config file ${path} is not UTF-8: byte ${offset} (0x${bytes[offset]!.toString(16).padStart(2, '0')}) starts no valid character; save the file as UTF-8`);
  }
}

/** The offset of the first byte that does not begin a well-formed UTF-8 sequence (RFC 3629). */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let at = 0;
  while (at < bytes.byteLength) {
    const length = utf8SequenceLength(bytes, at);
    if (length === 0) return at;
    at += length;
  }
  return -1;
}

/** The length of the well-formed sequence at `at`, or 0 if there is none. */
function utf8SequenceLength(bytes: Uint8Array, at: number): number {
  const lead = bytes[at]!;
  if (lead < 0x80) return 1;
  // The lead byte fixes the length and the allowed range of the second byte (no overlong forms,
  // no surrogates, nothing above U+10FFFF).
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else return 0;
  if (at + length > bytes.byteLength) return 0;
  const second = bytes[at + 1]!;
  if (second < low || second > high) return 0;
  for (let i = 2; i < length; i++) if ((bytes[at + i]! & 0xc0) !== 0x80) return 0;
  return length;
}

/** " at line L, column C" for a yaml parse error that knows its offset; empty otherwise. */
function yamlErrorPlace(text: string, error: unknown): string {
  const pos = (error as { pos?: unknown }).pos;
  if (!Array.isArray(pos) || typeof pos[0] !== 'number') return '';
  const before = text.slice(0, pos[0]);
  const line = before.split('\n').length;
  const column = pos[0] - before.lastIndexOf('\n');
  return ` at line ${line}, column ${column}`;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.trim();
}
