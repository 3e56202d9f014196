/**
 * Process log lines on stdout/stderr: one line per event, `time level message key=value…`.
 * Values are escaped (CR, LF, control bytes, quotes), so nothing a client sends can forge a
 * log line.
 */

export type Level = 'info' | 'warn' | 'error';
export type LogFn = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

export function escapeLogValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  const clipped = s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  const escaped = clipped.replace(/[\x00-\x1f\x7f"\\]/g, (c) => {
    if (c === '"') return '\\"';
    if (c === '\\') return '\\\\';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
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
