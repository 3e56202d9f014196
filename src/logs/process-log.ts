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

/**
 * Lines of one turn of the event loop, written together: a gateway logs a line per
 * transaction (the maillog) and more, and one write per line was a system call per message.
 * Order is kept across both streams (info on stdout, the rest on stderr: consecutive lines of
 * one stream go in one write). Flushed on the next turn and at exit; a process killed with
 * SIGKILL loses at most the lines of its last turn.
 */
class LineBatch {
  #lines: string[] = [];
  #streams: NodeJS.WritableStream[] = [];
  #scheduled = false;
  readonly #flush = (): void => this.flush();

  add(stream: NodeJS.WritableStream, line: string): void {
    this.#lines.push(line);
    this.#streams.push(stream);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  flush(): void {
    this.#scheduled = false;
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
