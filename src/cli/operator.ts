// Who is at the keyboard: user@host, recorded with freezes, drains and applied configurations.

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
