// Who is at the keyboard: user@host, recorded with freezes, drains and applied configurations.
// On a store with authentication on, the store user the command authenticated as is recorded
// instead (a self-declared name proves nothing; the store checked that one's password).

import { hostname, userInfo } from 'node:os';

export function operator(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No user database entry (a container): keep $USER.
  }
  return `${user}@${hostname()}`;
}

/** Who a command records as acting: the authenticated store user, else --by, else user@host. */
export function actingOperator(store: { user?: string | undefined }, by: string | undefined): string {
  return store.user ?? by ?? operator();
}
