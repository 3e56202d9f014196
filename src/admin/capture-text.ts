/**
 * A stored capture as a transcript for people: one line per line of the conversation, with
 * the time, the connection and the direction (`client>` the sending MTA said, `>client` the
 * gateway said to it, `>upstream`, `upstream>`), resets and closes, and a marker where bytes
 * were cut. Message data lines are shown as they were sent; control bytes as U+XXXX, so what
 * came from a message cannot drive the terminal or the browser.
 */

import { escapeUnsafe } from '../logs/escape.ts';
import type { CaptureData } from '../gateway/capture.ts';

export interface TranscriptLine {
  readonly time: string;
  readonly conn: number;
  /** `client>`, `>client`, `>upstream`, `upstream>`. */
  readonly dir: string;
  readonly text: string;
  /** A line of ours that is a marker (reset, close, gap, TLS), not bytes of the conversation. */
  readonly marker?: boolean;
}

export function captureLines(c: CaptureData): TranscriptLine[] {
  const lines: TranscriptLine[] = [];
  /** Per connection and direction: the part of a line not yet ended by CRLF. */
  const partial = new Map<string, string>();
  for (const e of c.events) {
    const conn = c.connections[e.conn];
    if (!conn) continue;
    const dir = conn.role === 'client' ? (e.from === 'peer' ? 'client>' : '>client') : e.from === 'peer' ? 'upstream>' : '>upstream';
    const time = new Date(e.t).toISOString();
    const key = `${e.conn}${dir}`;
    const flush = (): void => {
      const rest = partial.get(key);
      if (rest) lines.push({ time, conn: e.conn, dir, text: escapeUnsafe(rest) });
      partial.delete(key);
    };
    switch (e.kind) {
      case 'data': {
        const text = (partial.get(key) ?? '') + e.bytes!.toString('latin1');
        const parts = text.split('\r\n');
        partial.set(key, parts.pop()!);
        for (const p of parts) lines.push({ time, conn: e.conn, dir, text: escapeUnsafe(p) });
        break;
      }
      case 'gap':
        flush();
        lines.push({ time, conn: e.conn, dir, text: `[${e.length} bytes not captured: capture.max-bytes]`, marker: true });
        break;
      case 'fin':
        flush();
        lines.push({ time, conn: e.conn, dir, text: '[FIN: connection closed]', marker: true });
        break;
      case 'rst':
        flush();
        lines.push({ time, conn: e.conn, dir, text: '[RST: connection reset]', marker: true });
        break;
      case 'tls':
        lines.push({ time, conn: e.conn, dir, text: '[TLS started: the lines below were encrypted on the wire]', marker: true });
        break;
    }
  }
  for (const [key, rest] of partial) {
    if (!rest) continue;
    const conn = Number.parseInt(key, 10);
    lines.push({ time: '', conn, dir: key.slice(String(conn).length), text: escapeUnsafe(rest) });
  }
  return lines;
}

/** The heading: which connections the capture holds. */
export function captureHeading(c: CaptureData): string[] {
  return c.connections.map((x, i) =>
    x.role === 'client'
      ? `#${i} client ${hostPort(x.peer)} -> gateway ${hostPort(x.local)}`
      : `#${i} gateway ${hostPort(x.local)} -> upstream ${hostPort(x.peer)}`,
  );
}

export function captureText(c: CaptureData): string {
  const head = captureHeading(c);
  const body = captureLines(c).map((l) => `${l.time.slice(11, 23) || '            '} #${l.conn} ${l.dir.padEnd(9)} ${l.text}`);
  const cut = c.cutBytes > 0 ? [`(${c.cutBytes} bytes were not captured: capture.max-bytes)`] : [];
  return `${[...head, ...cut, '', ...body].join('\n')}\n`;
}

const hostPort = (e: { address: string; port: number }): string => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);
