// Every key Concord keeps in the coordination store, in one place. Plain keys with text or JSON
// values, so an operator can read (and, for the kill switch and drains, write) them with etcdctl.
//
//   /concord/config                              the applied configuration (YAML text); its mod revision is the config's revision
//   /concord/control/members/<member>            a live control-plane member (lease): {name, admin, host, pid, startedAtMs}
//   /concord/proxies/<proxy>                     a live proxy (lease): {name, admin, listen, host, pid, startedAtMs}
//   /concord/health/<pool>/<backend>             the published health result of one backend (HealthRecord)
//   /concord/drains/<pool>/<backend>             an operator's drain: {by, reason, atMs}; proxies stop sending new requests
//   /concord/events/<ms>-<writer>-<seq>          the event timeline (src/control/events.ts)
//   /concord/autoscale/...                       the autoscaler's keys (src/autoscale/state/keys.ts)
//
// Pool names are letters, digits, '.', '_', '-'; backend addresses are host:port. Neither contains
// '/', so one pool's keys never reach into another's and a key splits back into its parts.

export const CONCORD_PREFIX = '/concord/';
export const CONFIG_KEY = '/concord/config';
export const CONTROL_MEMBERS_PREFIX = '/concord/control/members/';
export const PROXIES_PREFIX = '/concord/proxies/';
export const HEALTH_PREFIX = '/concord/health/';
export const DRAINS_PREFIX = '/concord/drains/';

/** Names of members and proxies: what may appear in a key. */
export const COMPONENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Backend addresses as they appear in keys: host:port, IPv6 in brackets; no '/'. */
const BACKEND_PATTERN = /^[^/\s]{1,300}$/;

export function memberKey(name: string): string {
  return `${CONTROL_MEMBERS_PREFIX}${name}`;
}

export function proxyKey(name: string): string {
  return `${PROXIES_PREFIX}${name}`;
}

export function healthPoolPrefix(pool: string): string {
  return `${HEALTH_PREFIX}${pool}/`;
}

export function healthKey(pool: string, backend: string): string {
  return `${healthPoolPrefix(pool)}${backend}`;
}

export function drainKey(pool: string, backend: string): string {
  return `${DRAINS_PREFIX}${pool}/${backend}`;
}

/** The pool and backend of a key under `prefix` (health or drains), or undefined for any other key. */
export function poolAndBackendOf(prefix: string, key: string): { pool: string; backend: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const pool = rest.slice(0, slash);
  const backend = rest.slice(slash + 1);
  if (!COMPONENT_NAME_PATTERN.test(pool) || !BACKEND_PATTERN.test(backend)) return undefined;
  return { pool, backend };
}

/** The last part of a key under `prefix` (a member's or a proxy's name). */
export function nameOf(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  return COMPONENT_NAME_PATTERN.test(name) ? name : undefined;
}
