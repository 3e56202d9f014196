/**
 * MIME header parsing (RFC 2045, RFC 2183, RFC 2231, RFC 2047): just what the walker needs to
 * find parts and name files: Content-Type with its parameters, Content-Transfer-Encoding and
 * Content-Disposition. Pure string functions, tolerant of what real mail contains.
 */

export interface HeaderField {
  readonly name: string; // lower-cased
  readonly value: string; // unfolded, trimmed
}

/** Split a header block (lines without their line ends) into unfolded fields. */
export function parseHeaderBlock(lines: readonly string[]): HeaderField[] {
  const fields: HeaderField[] = [];
  let current: { name: string; value: string } | null = null;
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && current) {
      current.value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a header line: ignored, as mail clients do
    current = { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() };
    fields.push(current);
  }
  return fields;
}

export interface StructuredValue {
  /** The value before the first `;`, lower-cased, comments removed. */
  readonly value: string;
  /** Parameters, names lower-cased, RFC 2231 continuations joined and decoded. */
  readonly params: ReadonlyMap<string, string>;
}

/** Parse `type/subtype; a=b; c="d"` (Content-Type, Content-Disposition). */
export function parseStructured(raw: string): StructuredValue {
  const text = stripComments(raw);
  const parts = splitParams(text);
  const value = (parts.shift() ?? '').trim().toLowerCase();
  const simple = new Map<string, string>();
  const extended = new Map<string, { charset: string; pieces: Map<number, { text: string; encoded: boolean }> }>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const rawValue = unquote(part.slice(eq + 1).trim());
    const m = /^([^*]+)\*(?:(\d+)\*?|)$/.exec(name);
    const isExtended = name.includes('*');
    if (m && isExtended) {
      const base = m[1]!;
      const index = m[2] === undefined ? 0 : Number(m[2]);
      const encoded = name.endsWith('*');
      let entry = extended.get(base);
      if (!entry) extended.set(base, (entry = { charset: 'utf-8', pieces: new Map() }));
      let text = rawValue;
      if (encoded && index === 0) {
        const q = /^([^']*)'[^']*'(.*)$/s.exec(rawValue);
        if (q) {
          entry.charset = q[1] || 'utf-8';
          text = q[2]!;
        }
      }
      if (!entry.pieces.has(index)) entry.pieces.set(index, { text, encoded });
      continue;
    }
    if (!simple.has(name)) simple.set(name, rawValue); // repeated parameter: first wins
  }
  const params = new Map(simple);
  for (const [name, entry] of extended) {
    const ordered = [...entry.pieces.entries()].sort((a, b) => a[0] - b[0]);
    const bytes: Buffer[] = ordered.map(([, p]) =>
      p.encoded ? percentDecode(p.text) : Buffer.from(p.text, 'utf8'),
    );
    params.set(name, decodeCharset(Buffer.concat(bytes), entry.charset));
  }
  return { value, params };
}

/** Remove RFC 5322 comments `(…)` outside quoted strings. */
export function stripComments(s: string): string {
  if (!s.includes('(')) return s;
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      if (depth === 0) out += c + s[i + 1];
      i++;
      continue;
    }
    if (c === '"' && depth === 0) quoted = !quoted;
    if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

/** Split at `;` outside quoted strings (the parameter list of a structured field). */
export function splitParams(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && quoted && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unquote(s: string): string {
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) return s.slice(1, -1).replace(/\\(.)/g, '$1');
  return s;
}

function percentDecode(s: string): Buffer {
  return Buffer.from(
    s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  );
}

function decodeCharset(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset.toLowerCase() || 'utf-8').decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/** Decode RFC 2047 encoded words (`=?utf-8?B?…?=`, `=?iso-8859-1?Q?…?=`) in a header value. */
export function decodeEncodedWords(s: string): string {
  return s
    .replace(/(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=/g, (_, charset: string, enc: string, text: string) => {
      const bytes =
        enc.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : Buffer.from(
              text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (__, h: string) => String.fromCharCode(parseInt(h, 16))),
              'latin1',
            );
      return decodeCharset(bytes, charset);
    });
}

/** Normalise a Content-Transfer-Encoding value: case, comments and whitespace removed. */
export function normaliseEncoding(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const v = stripComments(raw).trim().toLowerCase();
  return v === '' ? null : v;
}
