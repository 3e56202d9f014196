/**
 * Process log lines on stdout/stderr: one line per event, `time level message key=value…`.
 * Values are escaped (CR, LF, control bytes, bidirectional overrides, quotes; logs/escape.ts),
 * so nothing a client sends can forge a log line or play tricks on a terminal.
 */

import { UNSAFE_TEXT } from './escape.ts';

export type Level = 'info' | 'warn' | 'error';
export type LogFn = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

export function escapeLogValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  const clipped = s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  const escaped = clipped.replace(/["\\]/g, '\\$&').replace(UNSAFE_TEXT, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return /[\s=]/.test(escaped) || escaped === '' ? `"${escaped}"` : escaped;
}

export function createLogger(opts: { quiet?: boolean } = {}): LogFn {
  return (level, msg, fields = {}) => {
    if (opts.quiet && level === 'info') return;
    const kv = Object.entries(fields)
      .map(([k, v]) => `${k}=${escapeLogValue(v)}`)
      .join(' ');
    const line = `${new Date().toISOString()} ${level} ${msg}${kv ? ` ${kv}` : ''}\n`;
    (level === 'info' ? process.stdout : process.stderr).write(line);
  };
}

export const silentLogger: LogFn = () => {};
