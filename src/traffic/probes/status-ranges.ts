// Expected HTTP statuses written as ranges: "200-299", "200-299,304", "204". Parsed once, at config time.

export type StatusRanges = readonly (readonly [number, number])[];

/** Parses "200-299,304"; throws a RangeError that says what is wrong. */
export function parseStatusRanges(text: string): StatusRanges {
  const ranges = text.split(',').map((part) => part.trim()).map((part) => {
    const match = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    if (!match) throw new RangeError(`'${part}' is not a status or range: write 200, 200-299 or 200-299,304`);
    const low = Number(match[1]);
    const high = Number(match[2] ?? match[1]);
    if (low < 100 || high > 599 || low > high) throw new RangeError(`'${part}' must lie within 100-599, low end first`);
    return [low, high] as const;
  });
  if (ranges.length === 0) throw new RangeError('no status given');
  return ranges;
}

export function statusInRanges(status: number, ranges: StatusRanges): boolean {
  return ranges.some(([low, high]) => status >= low && status <= high);
}

export function formatStatusRanges(ranges: StatusRanges): string {
  return ranges.map(([low, high]) => (low === high ? `${low}` : `${low}-${high}`)).join(',');
}
