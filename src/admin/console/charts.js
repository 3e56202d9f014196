// Bar charts in SVG, drawn by hand: a few dozen lines instead of a chart library, and no
// inline style (colours are CSS classes, so the CSP stays strict).

const NS = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 180;
const PAD = { left: 34, right: 6, top: 8, bottom: 18 };

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A round axis maximum (1, 2, 5 × 10^n) at or above `v`. */
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Stacked bars: `buckets` is the list of bucket labels (time prefixes, oldest first), `series`
 * maps a class name (an action) to a Map bucket → count. `label(bucket)` names an x tick.
 */
export function stackedBars(buckets, series, { label, title }) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  const totals = buckets.map((b) => [...series.values()].reduce((n, m) => n + (m.get(b) ?? 0), 0));
  // At least 2, so the middle grid line is a whole number of messages.
  const max = Math.max(2, niceMax(Math.max(0, ...totals)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / Math.max(1, buckets.length);
  svg.append(el('line', { class: 'axis', x1: PAD.left, y1: PAD.top + plotH, x2: W - PAD.right, y2: PAD.top + plotH }));
  for (const f of [0, 0.5, 1]) {
    const y = PAD.top + plotH - f * plotH;
    svg.append(el('line', { class: 'axis', x1: PAD.left, y1: y, x2: W - PAD.right, y2: y }));
    svg.append(el('text', { x: PAD.left - 4, y: y + 3, 'text-anchor': 'end' }, String(Math.round(f * max))));
  }
  buckets.forEach((b, i) => {
    let y = PAD.top + plotH;
    const x = PAD.left + i * bw;
    for (const [cls, m] of series) {
      const n = m.get(b) ?? 0;
      if (!n) continue;
      const h = (n / max) * plotH;
      y -= h;
      const r = el('rect', { class: `b-${cls}`, x: x + 0.5, y, width: Math.max(1, bw - 1), height: h });
      r.append(el('title', {}, `${label(b)} ${cls}: ${n}`));
      svg.append(r);
    }
    const every = Math.ceil(buckets.length / 8);
    if (i % every === 0) svg.append(el('text', { x: x + bw / 2, y: H - 4, 'text-anchor': 'middle' }, label(b)));
  });
  return svg;
}
