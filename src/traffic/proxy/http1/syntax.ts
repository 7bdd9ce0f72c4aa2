// Byte classes of HTTP/1.1 (RFC 9110 §5.6.2, RFC 9112 §3) as lookup tables, and the header names
// the fast path treats specially, matched on bytes so that no string is built for a header it
// only copies. Pure: bytes in, numbers out.

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const SEMICOLON = 0x3b;

/** tchar: the characters of a token (a header name, a method, a Connection option). */
export const TOKEN = 1;
/** A byte of a field value the fast path accepts from a client: HTAB, SP and visible ASCII. */
export const CLIENT_VALUE = 2;
/** A byte of a field value accepted from a backend: also obs-text (0x80-0xFF), which Node relays too. */
export const BACKEND_VALUE = 4;
/**
 * A byte of an origin-form request target the fast path accepts: visible ASCII except '#' (a
 * fragment has no business in a request; Node would keep it in the URL, so such a request is handed
 * to Node rather than guessed at).
 */
export const TARGET = 8;
export const HEX_DIGIT = 16;

export const BYTE_CLASS: Uint8Array = (() => {
  const table = new Uint8Array(256);
  const tokenSymbols = "!#$%&'*+-.^_`|~";
  for (let byte = 0; byte < 256; byte++) {
    let flags = 0;
    const isDigit = byte >= 0x30 && byte <= 0x39;
    const isAlpha = (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
    if (isDigit || isAlpha || tokenSymbols.includes(String.fromCharCode(byte))) flags |= TOKEN;
    const visible = byte >= 0x21 && byte <= 0x7e;
    if (visible || byte === SP || byte === HTAB) flags |= CLIENT_VALUE | BACKEND_VALUE;
    if (byte >= 0x80) flags |= BACKEND_VALUE;
    if (visible && byte !== 0x23) flags |= TARGET;
    if (isDigit || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)) flags |= HEX_DIGIT;
    table[byte] = flags;
  }
  return table;
})();

/** Header names with a meaning for the fast path; anything else is copied as it is. */
export const HEADER_OTHER = 0;
export const HEADER_HOST = 1;
export const HEADER_CONTENT_LENGTH = 2;
export const HEADER_TRANSFER_ENCODING = 3;
export const HEADER_CONNECTION = 4;
export const HEADER_EXPECT = 5;
export const HEADER_UPGRADE = 6;
/** Hop-by-hop headers without a further meaning here: keep-alive, proxy-connection, te, trailer, proxy-authenticate, proxy-authorization, http2-settings. */
export const HEADER_HOP_BY_HOP = 7;
export const HEADER_X_FORWARDED_FOR = 8;
/** x-forwarded-proto and x-forwarded-host: the proxy sets its own. */
export const HEADER_X_FORWARDED_OTHER = 9;
export const HEADER_KEEP_ALIVE = 10;
export const HEADER_SHED_MARKER = 11;

const KNOWN_HEADERS: readonly [string, number][] = [
  ['host', HEADER_HOST],
  ['content-length', HEADER_CONTENT_LENGTH],
  ['transfer-encoding', HEADER_TRANSFER_ENCODING],
  ['connection', HEADER_CONNECTION],
  ['expect', HEADER_EXPECT],
  ['upgrade', HEADER_UPGRADE],
  ['keep-alive', HEADER_KEEP_ALIVE],
  ['proxy-connection', HEADER_HOP_BY_HOP],
  ['te', HEADER_HOP_BY_HOP],
  ['trailer', HEADER_HOP_BY_HOP],
  ['proxy-authenticate', HEADER_HOP_BY_HOP],
  ['proxy-authorization', HEADER_HOP_BY_HOP],
  ['http2-settings', HEADER_HOP_BY_HOP],
  ['x-forwarded-for', HEADER_X_FORWARDED_FOR],
  ['x-forwarded-proto', HEADER_X_FORWARDED_OTHER],
  ['x-forwarded-host', HEADER_X_FORWARDED_OTHER],
  ['x-concord-shed', HEADER_SHED_MARKER],
];

/** Known names grouped by length, as byte arrays: a lookup compares only names of the right length. */
const KNOWN_BY_LENGTH: (readonly [Uint8Array, number][] | undefined)[] = (() => {
  const byLength: [Uint8Array, number][][] = [];
  for (const [name, kind] of KNOWN_HEADERS) {
    (byLength[name.length] ??= []).push([asciiBytes(name), kind]);
  }
  return byLength;
})();

export function asciiBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) throw new RangeError(`bug: '${text}' is not ASCII`);
    bytes[i] = code;
  }
  return bytes;
}

/**
 * Whether bytes[start, start + name.length) spell `name` (lowercase letters, digits and '-')
 * ignoring case. Only called on bytes already checked to be tchars, for which OR-ing 0x20 folds
 * exactly the letters: no other tchar becomes a lowercase letter, a digit or '-' that way.
 */
export function equalsIgnoringCase(bytes: Uint8Array, start: number, name: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) {
    if ((bytes[start + i]! | 0x20) !== name[i]) return false;
  }
  return true;
}

/** The kind of the header named by bytes[start, end) (tchars), HEADER_OTHER when it has no meaning here. */
export function headerKind(bytes: Uint8Array, start: number, end: number): number {
  const candidates = KNOWN_BY_LENGTH[end - start];
  if (candidates === undefined) return HEADER_OTHER;
  for (const [name, kind] of candidates) {
    if (equalsIgnoringCase(bytes, start, name)) return kind;
  }
  return HEADER_OTHER;
}

/** Whether bytes[start, end) spells `lowerName` ignoring case (the caller checked the length). */
export function nameIs(bytes: Uint8Array, start: number, end: number, lowerName: Uint8Array): boolean {
  return end - start === lowerName.length && equalsIgnoringCase(bytes, start, lowerName);
}

/** Two byte ranges of tchars spell the same name ignoring case. */
export function sameName(bytes: Uint8Array, aStart: number, aEnd: number, otherBytes: Uint8Array, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = 0; i < aEnd - aStart; i++) {
    if ((bytes[aStart + i]! | 0x20) !== (otherBytes[bStart + i]! | 0x20)) return false;
  }
  return true;
}

/**
 * The decimal number in bytes[start, end): digits only (no sign, no spaces, no commas), at most
 * 15 of them so that it stays an exact integer; -1 when it is not such a number.
 */
export function decimalValue(bytes: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}
