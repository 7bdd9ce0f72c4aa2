// Priority classes of admission control. Under overload, lower classes are shed first and critical
// traffic last: a class may never use the capacity reserved for the classes above it, while the
// classes above may use everything (see priority-shares.ts).

/** From highest to lowest: the order in which capacity is handed out and shedding is avoided. */
export const PRIORITIES = ['critical', 'default', 'sheddable'] as const;

export type Priority = (typeof PRIORITIES)[number];

/** 0 for critical, growing downwards: a smaller rank is more important. */
export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}

export function isPriority(value: string): value is Priority {
  return (PRIORITIES as readonly string[]).includes(value);
}

/** A count per priority class, every class present. */
export type PerPriority<T> = Record<Priority, T>;

export function perPriority<T>(make: (priority: Priority) => T): PerPriority<T> {
  return { critical: make('critical'), default: make('default'), sheddable: make('sheddable') };
}
