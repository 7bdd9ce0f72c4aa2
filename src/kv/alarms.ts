// Cluster alarms (etcd's AlarmStore): NOSPACE is raised when a write would exceed the space quota
// and turns the store read-mostly until disarmed; CORRUPT is raised when members' hashes diverge
// and stops all service. Alarms are replicated state: every member applies the same activations.

import type { AlarmMember, AlarmType } from './types.ts';

export class AlarmList {
  /** Sorted by member ID, then alarm type, so snapshots and responses are deterministic. */
  private alarms: AlarmMember[] = [];

  /** Activating NONE does nothing; activating an active alarm returns it unchanged (as etcd). */
  activate(memberId: bigint, alarm: AlarmType): AlarmMember | undefined {
    if (alarm === 'none') return undefined;
    const existing = this.find(memberId, alarm);
    if (existing !== undefined) return existing;
    const member = { memberId, alarm };
    this.alarms.push(member);
    this.alarms.sort(compareAlarms);
    return member;
  }

  /** Returns the alarm that was deactivated, or undefined if it was not active. */
  deactivate(memberId: bigint, alarm: AlarmType): AlarmMember | undefined {
    const existing = this.find(memberId, alarm);
    if (existing === undefined) return undefined;
    this.alarms = this.alarms.filter((member) => member !== existing);
    return existing;
  }

  /** Alarms of one type, or all of them for NONE (etcd's AlarmStore.Get). */
  list(alarm: AlarmType = 'none'): AlarmMember[] {
    return this.alarms.filter((member) => alarm === 'none' || member.alarm === alarm).map((member) => ({ ...member }));
  }

  isActive(alarm: AlarmType): boolean {
    return this.alarms.some((member) => member.alarm === alarm);
  }

  private find(memberId: bigint, alarm: AlarmType): AlarmMember | undefined {
    return this.alarms.find((member) => member.memberId === memberId && member.alarm === alarm);
  }
}

function compareAlarms(a: AlarmMember, b: AlarmMember): number {
  if (a.memberId !== b.memberId) return a.memberId < b.memberId ? -1 : 1;
  return a.alarm < b.alarm ? -1 : a.alarm > b.alarm ? 1 : 0;
}
