// A one-line progress bar on a terminal (stderr), redrawn in place; never used when not a TTY, so
// piped and CI output stays clean and deterministic.

const BAR_WIDTH = 30;

export class ProgressBar {
  private readonly stream: NodeJS.WritableStream;
  private readonly total: number;
  private lastDrawn = '';

  constructor(stream: NodeJS.WritableStream, total: number) {
    this.stream = stream;
    this.total = total;
  }

  update(done: number, failures: number): void {
    const filled = Math.round((done / this.total) * BAR_WIDTH);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${this.total} seeds` +
      (failures > 0 ? `, ${failures} failing` : '');
    if (line === this.lastDrawn) return;
    this.lastDrawn = line;
    this.stream.write(`\r${line}`);
  }

  clear(): void {
    if (this.lastDrawn) this.stream.write(`\r${' '.repeat(this.lastDrawn.length)}\r`);
  }

  finish(): void {
    if (this.lastDrawn) this.stream.write('\n');
  }
}
