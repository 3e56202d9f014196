/**
 * A progress bar on a terminal for long runs: bytes, files, throughput. Silent when the
 * stream is not a terminal (pipes, CI logs) and for runs shorter than a second, so short
 * scans and scripts see nothing but the results.
 */

import type { WriteStream } from 'node:tty';

const SHOW_AFTER_MS = 1000;
const REDRAW_MS = 100;
const WIDTH = 30;

export class Progress {
  #bytes = 0;
  #files = 0;
  readonly #started = Date.now();
  #drawn = 0;
  #visible = false;

  constructor(private readonly out: NodeJS.WriteStream | WriteStream, private readonly totalBytes: number, private readonly totalFiles: number) {}

  advance(bytes: number): void {
    this.#bytes += bytes;
    this.#draw();
  }

  fileDone(): void {
    this.#files++;
    this.#draw();
  }

  /** Erase the bar (before other output on the same terminal; it comes back on the next draw). */
  clear(): void {
    if (this.#visible) this.out.write('\r\x1b[K');
    this.#visible = false;
  }

  finish(): void {
    this.clear();
  }

  #draw(): void {
    if (!this.out.isTTY) return;
    const now = Date.now();
    if (now - this.#started < SHOW_AFTER_MS || now - this.#drawn < REDRAW_MS) return;
    this.#drawn = now;
    this.#visible = true;
    const frac = this.totalBytes > 0 ? Math.min(1, this.#bytes / this.totalBytes) : this.#files / Math.max(1, this.totalFiles);
    const filled = Math.round(frac * WIDTH);
    const mbps = this.#bytes / 1e6 / ((now - this.#started) / 1000);
    this.out.write(
      `\r\x1b[K[${'='.repeat(filled)}${' '.repeat(WIDTH - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ` +
        `${this.#files}/${this.totalFiles} files  ${(this.#bytes / 1e6).toFixed(1)} MB  ${mbps.toFixed(1)} MB/s`,
    );
  }
}
