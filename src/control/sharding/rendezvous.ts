// Which control-plane member checks which backend: rendezvous (highest random weight) hashing.
// Every member scores every (member, backend) pair with the same hash and the member with the
// highest score owns the backend. All members compute the same owner from the same member list,
// with no coordination beyond that list; when a member leaves, only its backends move (each to the
// member with the next highest score), and a member that joins takes about 1/N of them from the
// others. Pure: the member list and the keys come in, the assignment goes out.

import { murmur3 } from '../../traffic/balance/hash.ts';

/** A 52-bit score from two independent 32-bit hashes, so ties between members are practically impossible. */
export function score(member: string, key: string): number {
  const text = `${member}\u0000${key}`;
  return murmur3(text, 0x9e3779b9) * 2 ** 20 + (murmur3(text, 0x85ebca6b) >>> 12);
}

/** The member that owns `key`, or undefined when there is no member. Ties go to the smaller name. */
export function ownerOf(members: readonly string[], key: string): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const member of members) {
    const value = score(member, key);
    if (value > bestScore || (value === bestScore && best !== undefined && member < best)) {
      best = member;
      bestScore = value;
    }
  }
  return best;
}

/** The keys `member` owns among `keys`. */
export function ownedBy(member: string, members: readonly string[], keys: Iterable<string>): string[] {
  const owned: string[] = [];
  for (const key of keys) if (ownerOf(members, key) === member) owned.push(key);
  return owned;
}
