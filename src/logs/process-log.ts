/**
 * Process log lines on stdout/stderr: one line per event, `time level message key=value…`.
 * Values are escaped (CR, LF, control bytes, bidirectional overrides, quotes; logs/escape.ts),
 * so nothing a client sends can forge a log line or play tricks on a terminal.
 */

import { UNSAFE_TEXT } from './escape.ts';

export type Level = 'info' | 'warn' | 'error';
export type LogFn = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

/** Printable ASCII without space, quote, backslash or `=`: written as it is (most values). */
const PLAIN = /^[!#-<>-[\]-~]+$/;

export function escapeLogValue(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  if (s.length <= 2000 && PLAIN.test(s)) return s;
  const clipped = s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  const escaped = clipped.replace(/["\\]/g, '\\$&').replace(UNSAFE_TEXT, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return /[\s=]/.test(escaped) || escaped === '' ? `"${escaped}"` : escaped;
}

/** How long a line may wait for others to share its write. */
const BATCH_MS = 20;
/** Lines written at once, whatever the wait. */
const BATCH_BYTES = 64 * 1024;

/**
 * Lines of up to BATCH_MS, written together: a gateway logs a line per transaction (the
 * maillog) and more, and a write per line — or per turn of the event loop, which under load
 * is about one per message — was a system call per message. Order is kept across both
 * streams (info on stdout, the rest on stderr: consecutive lines of one stream go in one
 * write). Flushed after BATCH_MS, at BATCH_BYTES and at exit (also after an uncaught
 * exception); a process killed with SIGKILL loses at most the lines of its last BATCH_MS.
 */
class LineBatch {
  #lines: string[] = [];
  #streams: NodeJS.WritableStream[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #flush = (): void => this.flush();

  add(stream: NodeJS.WritableStream, line: string): void {
    this.#lines.push(line);
    this.#streams.push(stream);
    this.#bytes += line.length;
    if (this.#bytes >= BATCH_BYTES) this.flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(this.#flush, BATCH_MS);
      this.#timer.unref(); // the exit handler writes what is left
    }
  }

  flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#bytes = 0;
    const lines = this.#lines;
    const streams = this.#streams;
    if (lines.length === 0) return;
    this.#lines = [];
    this.#streams = [];
    let from = 0;
    for (let i = 1; i <= lines.length; i++) {
      if (i < lines.length && streams[i] === streams[from]) continue;
      streams[from]!.write(i - from === 1 ? lines[from]! : lines.slice(from, i).join(''));
      from = i;
    }
  }
}

let batch: LineBatch | null = null;

export function createLogger(opts: { quiet?: boolean } = {}): LogFn {
  if (!batch) {
    const b = (batch = new LineBatch());
    process.on('exit', () => b.flush());
  }
  const lines = batch;
  return (level, msg, fields = {}) => {
    if (opts.quiet && level === 'info') return;
    let kv = '';
    for (const k in fields) {
      const v = fields[k];
      if (v === undefined) continue;
      kv += ` ${k}=${escapeLogValue(v)}`;
    }
    lines.add(level === 'info' ? process.stdout : process.stderr, `${new Date().toISOString()} ${level} ${msg}${kv}\n`);
  };
}

export const silentLogger: LogFn = () => {};
