// Header fields both ways between the two shapes they take here: the flat [name, value, ...] list
// of an HPACK block (hpack-decoder.ts, hpack-encoder.ts) and the object node:http2 hands its users,
// which grpc-js and the unary fast path read (and Metadata.toHttp2Headers writes).

/** A header object as node:http2 gives and takes it: one value, or a list of values, per name. */
export type HeaderObject = Record<string, string | string[] | number | undefined>;

/** The object's fields as an HPACK list, pseudo-headers first (RFC 9113 §8.3), a list's values one field each. */
export function headerFields(headers: HeaderObject): string[] {
  const pseudo: string[] = [];
  const regular: string[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const into = name.startsWith(':') ? pseudo : regular;
    if (Array.isArray(value)) for (const item of value) into.push(name, item);
    else into.push(name, String(value));
  }
  return pseudo.concat(regular);
}

/**
 * The list as node:http2 presents a request's headers: a repeated header's values joined with
 * ', ', set-cookie's kept as a list; no prototype, so no name can reach one.
 */
export function headerObject(fields: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const existing = headers[name];
    if (existing === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = `${existing}, ${value}`;
  }
  return headers;
}
