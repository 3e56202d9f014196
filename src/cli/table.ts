/**
 * Plain-text tables for the terminal. Cells are shown as text (decoded UTF-8 kept; control
 * characters, line separators and bidirectional overrides escaped as U+XXXX, logs/escape.ts).
 * Nothing is cut when the output is a file or a pipe; on a terminal only the widest columns
 * are shortened (with …), and only as far as the terminal's width needs.
 */

import { escapeUnsafe } from '../logs/escape.ts';

/** No column is shortened below this on a narrow terminal. */
const MIN_CELL = 12;

export function printTable(headers: string[], rows: string[][], out: NodeJS.WriteStream | NodeJS.WritableStream = process.stdout): void {
  const cells = rows.map((r) => r.map((c) => escapeUnsafe(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => [...(r[i] ?? '')].length)));
  const columns = 'isTTY' in out && out.isTTY ? out.columns : 0;
  if (columns) fit(widths, columns - 2 * (widths.length - 1));
  const cell = (c: string, w: number): string => {
    const chars = [...c];
    return chars.length > w ? `${chars.slice(0, w - 1).join('')}…` : c + ' '.repeat(w - chars.length);
  };
  const line = (r: string[]): string => r.map((c, i) => cell(c, widths[i]!)).join('  ').trimEnd();
  out.write(`${line(headers)}\n`);
  for (const r of cells) out.write(`${line(r)}\n`);
  if (rows.length === 0) out.write('(no records)\n');
}

/** Shorten the widest column by one until the sum fits (or every column is at the minimum). */
function fit(widths: number[], room: number): void {
  let total = widths.reduce((a, b) => a + b, 0);
  while (total > room) {
    let widest = 0;
    for (let i = 1; i < widths.length; i++) if (widths[i]! > widths[widest]!) widest = i;
    if (widths[widest]! <= MIN_CELL) return;
    widths[widest]!--;
    total--;
  }
}
