// Plain round robin: each backend in turn, ignoring weights (use weighted-round-robin for weights).

import type { BackendLoad, PickRequest, Picker } from './types.ts';

export class RoundRobinPicker implements Picker {
  private next: number;
  private readonly backends: readonly BackendLoad[];

  constructor(backends: readonly BackendLoad[], startIndex: number) {
    this.backends = backends;
    this.next = backends.length === 0 ? 0 : startIndex % backends.length;
  }

  pick(request: PickRequest): BackendLoad | undefined {
    const count = this.backends.length;
    for (let tried = 0; tried < count; tried++) {
      const backend = this.backends[this.next]!;
      this.next = (this.next + 1) % count;
      if (request.exclude === undefined || !request.exclude.has(backend.id)) return backend;
    }
    return undefined;
  }
}
