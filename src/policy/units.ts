/**
 * Units in configuration values: sizes (`25MiB`, `100kb`, `1048576`) and durations (`30s`,
 * `5m`, `250ms`, `1h`, `30d`). Parsing returns null on anything else; the schema turns that into an
 * error naming the key.
 */

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1000, kb: 1000, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseSize(v: string | number): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return null;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  return unit === undefined ? null : Math.round(Number(m[1]) * unit);
}

export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v * 1000 : null; // bare number: seconds
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(v);
  if (!m) return null;
  const unit = DURATION_UNITS[m[2]!.toLowerCase()];
  return unit === undefined ? null : Math.round(Number(m[1]) * unit);
}

/** `2h`, `90m`, `7d` ago; or a date/time (local time unless it says Z or an offset): ISO 8601 UTC, or null. */
export function parseWhen(v: string, now = Date.now()): string | null {
  const ago = parseDuration(v);
  if (ago !== null && /[a-z]$/i.test(v.trim())) return new Date(now - ago).toISOString();
  const t = Date.parse(/^\d{4}-\d\d-\d\d$/.test(v) ? `${v}T00:00` : v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}
