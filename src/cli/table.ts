/** Plain-text tables for the terminal; cells are made printable and clipped. */

const MAX_CELL = 60;

export function printTable(headers: string[], rows: string[][], out: NodeJS.WritableStream = process.stdout): void {
  const clean = (s: string): string => {
    const p = s.replace(/[^\x20-\x7e]/g, '?');
    return p.length > MAX_CELL ? `${p.slice(0, MAX_CELL - 1)}…` : p;
  };
  const cells = rows.map((r) => r.map(clean));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  out.write(`${line(headers)}\n`);
  for (const r of cells) out.write(`${line(r)}\n`);
  if (rows.length === 0) out.write('(no records)\n');
}
