/**
 * The benchmark as a picture: an SVG (no dependency: it is a few rectangles and labels) with
 * messages per second at 10 KB for each session count, and MB/s for the large sizes, one bar
 * per path, each panel scaled to its own maximum. `npm run bench -- --chart` writes it to
 * docs/bench.svg, which the README shows.
 */

export interface ChartRow {
  readonly path: string;
  readonly size: number;
  readonly sessions: number;
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
}

const COLORS: Record<string, string> = {
  direct: '#9e9e9e',
  haproxy: '#607d8b',
  'smtpwall-saf': '#1565c0',
  'smtpwall-saf-2w': '#42a5f5',
  'smtpwall-ct': '#2e7d32',
  'smtpwall-clamd': '#6a1b9a',
  clamsmtp: '#e65100',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

interface Panel {
  readonly title: string;
  readonly groups: ReadonlyArray<{ label: string; bars: ReadonlyArray<{ path: string; value: number }> }>;
  readonly unit: string;
}

export function renderChart(rows: readonly ChartRow[], subtitle: string): string {
  const paths = [...new Set(rows.map((r) => r.path))];
  const sessions = [...new Set(rows.filter((r) => r.size === 10_000).map((r) => r.sessions))].sort((a, b) => a - b);
  const big = [...new Set(rows.filter((r) => r.size >= 1_000_000).map((r) => r.size))].sort((a, b) => a - b);
  const pick = (size: number, s: number, path: string) => rows.find((r) => r.size === size && r.sessions === s && r.path === path);
  const maxSessions = Math.max(...rows.map((r) => r.sessions));
  const panels: Panel[] = [
    {
      title: 'messages per second, 10 KB messages',
      unit: 'msg/s',
      groups: sessions.map((s) => ({ label: `${s} session${s > 1 ? 's' : ''}`, bars: paths.map((p) => ({ path: p, value: pick(10_000, s, p)?.msgsPerSec ?? 0 })) })),
    },
  ];
  if (big.length) {
    panels.push({
      title: `MB per second, large messages (${maxSessions} sessions)`,
      unit: 'MB/s',
      groups: big.map((size) => ({ label: `${size / 1e6} MB`, bars: paths.map((p) => ({ path: p, value: pick(size, maxSessions, p)?.mbPerSec ?? 0 })) })),
    });
  }
  const W = 900;
  const panelH = 260;
  const top = 60;
  const H = top + panels.length * (panelH + 40) + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="20" y="24" font-size="16" font-weight="bold">npm run bench: delivery through each path</text>`,
    `<text x="20" y="44" fill="#555">${esc(subtitle)}</text>`,
  ];
  paths.forEach((p, i) => {
    const x = 20 + (i % 7) * 125;
    out.push(`<rect x="${x}" y="${H - 26}" width="12" height="12" fill="${COLORS[p] ?? '#000'}"/><text x="${x + 16}" y="${H - 16}">${esc(p)}</text>`);
  });
  panels.forEach((panel, pi) => {
    const y0 = top + pi * (panelH + 40);
    const max = Math.max(1, ...panel.groups.flatMap((g) => g.bars.map((b) => b.value)));
    out.push(`<text x="20" y="${y0 + 12}" font-weight="bold">${esc(panel.title)}</text>`);
    const plotTop = y0 + 24;
    const plotH = panelH - 50;
    const groupW = (W - 80) / panel.groups.length;
    const barW = Math.min(28, (groupW - 20) / Math.max(1, paths.length));
    out.push(`<line x1="60" y1="${plotTop + plotH}" x2="${W - 20}" y2="${plotTop + plotH}" stroke="#333"/>`);
    panel.groups.forEach((g, gi) => {
      const gx = 60 + gi * groupW + (groupW - barW * g.bars.length) / 2;
      g.bars.forEach((b, bi) => {
        const h = (b.value / max) * plotH;
        const x = gx + bi * barW;
        out.push(`<rect x="${x.toFixed(1)}" y="${(plotTop + plotH - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[b.path] ?? '#000'}"><title>${esc(b.path)}: ${b.value.toFixed(1)} ${panel.unit}</title></rect>`);
        if (b.value > 0) {
          out.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(plotTop + plotH - h - 3).toFixed(1)}" font-size="9" text-anchor="middle">${b.value >= 100 ? b.value.toFixed(0) : b.value.toFixed(1)}</text>`);
        }
      });
      out.push(`<text x="${(60 + gi * groupW + groupW / 2).toFixed(1)}" y="${plotTop + plotH + 16}" text-anchor="middle">${esc(g.label)}</text>`);
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
