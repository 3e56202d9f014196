/**
 * Every reading of one MIME header block: the (type, boundary, transfer encoding) triples that
 * real parsers take from it. Where fields or parameters are given twice, in two forms, with a
 * quote left open, a `;` missing or comments in odd places, parsers disagree: Python's email
 * package takes the first Content-Type and the first plain parameter, libmime the last
 * parameter, postal-mime the last field, RFC 2231 readers the extended form. The walker walks
 * each distinct reading this returns, so the payload cannot sit in the one reading it skipped.
 *
 * Pure functions of the header fields; at most MAX_READINGS readings per part (more raise
 * MIME_READINGS_EXCEEDED in the walker: a header block built to exhaust us is not "clean").
 */

import { type HeaderField, normaliseEncoding, parseStructured, splitParams, stripComments, type StructuredValue } from './headers.ts';

/** Readings walked per part; a real message has one, a crafted one rarely more than four. */
export const MAX_READINGS = 8;

export interface Reading {
  /** Content type, lower-cased, without parameters. */
  readonly type: string;
  /** Whether the type was declared (false: implied by the context, e.g. text/plain). */
  readonly declared: boolean;
  /** The boundary, for multipart types; null: none usable (walked with a guessed one). */
  readonly boundary: string | null;
  /** Content-Transfer-Encoding, normalised; null when absent. */
  readonly encoding: string | null;
}

export interface PartReadings {
  readonly readings: readonly Reading[];
  /** File names any parser would give the part (first: the one shown). */
  readonly names: readonly string[];
  /** Why the part has more than one reading, for the MIME_AMBIGUOUS event; null if it has one. */
  readonly ambiguity: string | null;
  /** Whether more readings existed than MAX_READINGS. */
  readonly truncated: boolean;
  /** The parameters of the first Content-Type (charset, id of message/partial, …). */
  readonly params: ReadonlyMap<string, string>;
}

/** What the enclosing entity implies for a part without a usable Content-Type. */
export interface PartContext {
  /** `message/rfc822` inside multipart/digest (RFC 2046 §5.1.5), else `text/plain`. */
  readonly defaultType: string;
  /** The top level of a message without MIME-Version: also read as plain text (RFC 2045 §4). */
  readonly plainTextToo: boolean;
}

const TOKEN_TYPE = /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*(?:;|$)/;
const LENIENT_TYPE = /^\s*([A-Za-z0-9][\w.+-]*\/[\w.+-]+)/;

export function partReadings(fields: readonly HeaderField[], ctx: PartContext): PartReadings {
  const cts = fields.filter((f) => f.name === 'content-type').map((f) => f.value);
  const ctes = fields.filter((f) => f.name === 'content-transfer-encoding').map((f) => f.value);
  const cds = fields.filter((f) => f.name === 'content-disposition').map((f) => f.value);
  const why: string[] = [];
  if (cts.length > 1) why.push(`${cts.length} Content-Type fields`);
  if (ctes.length > 1) why.push(`${ctes.length} Content-Transfer-Encoding fields`);
  if (cds.length > 1) why.push(`${cds.length} Content-Disposition fields`);

  // Types: the first and the last field, each read strictly and leniently.
  const typeCandidates: { type: string; declared: boolean; raw: string | null }[] = [];
  const consider = (raw: string): void => {
    const strict = TOKEN_TYPE.exec(stripComments(raw));
    const lenient = LENIENT_TYPE.exec(stripComments(raw));
    // A value that is no type/subtype is text/plain to Python (RFC 2045 §5.2); a lenient
    // reader still takes the word before the first space.
    typeCandidates.push(strict ? { type: strict[1]!.toLowerCase(), declared: true, raw } : { type: 'text/plain', declared: false, raw });
    if (!strict && lenient) {
      typeCandidates.push({ type: lenient[1]!.toLowerCase(), declared: true, raw });
      why.push(`Content-Type "${raw.slice(0, 40)}" read two ways`);
    }
  };
  if (cts.length === 0) {
    typeCandidates.push({ type: ctx.defaultType, declared: false, raw: null });
    if (ctx.defaultType !== 'text/plain') typeCandidates.push({ type: 'text/plain', declared: false, raw: null });
  } else {
    consider(cts[0]!);
    if (cts.length > 1) consider(cts[cts.length - 1]!);
  }
  if (ctx.plainTextToo && typeCandidates.some((t) => t.type !== 'text/plain')) {
    typeCandidates.push({ type: 'text/plain', declared: false, raw: null });
    why.push('no MIME-Version: also read as plain text');
  }

  // Each field read with comments removed, and as it stands (Python compares the whole value:
  // `base64 (robot)` is no encoding it knows, so it keeps the raw bytes).
  const encodings = dedupe(
    [ctes[0], ctes[ctes.length - 1]].flatMap((e) => (e !== undefined && e.includes('(') ? [normaliseEncoding(e), e.trim().toLowerCase()] : [normaliseEncoding(e)])),
  );

  const readings: Reading[] = [];
  let truncated = false;
  const add = (r: Reading): void => {
    if (readings.some((x) => x.type === r.type && x.boundary === r.boundary && x.encoding === r.encoding)) return;
    if (readings.length >= MAX_READINGS) truncated = true;
    else readings.push(r);
  };
  for (const t of typeCandidates) {
    const found = t.type.startsWith('multipart/') && t.raw !== null ? boundaryCandidates(t.raw) : [null];
    const boundaries = found.length ? found : [null];
    if (boundaries.length > 1) why.push(`boundary read ${boundaries.length} ways`);
    for (const boundary of boundaries) {
      for (const encoding of encodings) add({ type: t.type, declared: t.declared, boundary, encoding });
    }
  }

  const first = cts.length ? parseStructured(cts[0]!) : null;
  const names = nameCandidates(cts, cds);
  if (names.length > 1) why.push(`${names.length} file names`);
  return {
    readings,
    names,
    ambiguity: readings.length > 1 || names.length > 1 ? [...new Set(why)].join(', ') || 'read more than one way' : null,
    truncated,
    params: first?.params ?? new Map(),
  };
}

/**
 * Every boundary a parser may take from a Content-Type value: the first and the last plain
 * parameter, the RFC 2231 form, and each `boundary=` found by a lenient scan (which also
 * finds it after a missing `;`, inside comments, or behind an unclosed quote).
 */
export function boundaryCandidates(raw: string): (string | null)[] {
  const out: (string | null)[] = [];
  const push = (v: string | undefined): void => {
    if (v === undefined) return;
    const b = v.replace(/\s+$/, '');
    if (b.length > 0 && b.length <= 200 && !out.includes(b)) out.push(b);
  };
  const strict = parseStructured(raw);
  push(strict.params.get('boundary'));
  // Python's reading: split at `;`, no comments removed, quotes dropped only when both ends
  // are quotes; none found means "no boundary" (the body is one text), a strange one never
  // matches (the body is all preamble). Both are readings of their own.
  const python = pythonParam(raw, 'boundary');
  if (python === undefined) out.push(null);
  else push(python);
  for (const v of allPlain(raw, 'boundary')) push(v);
  for (const v of scan(raw, 'boundary')) push(v);
  for (const v of scan(stripComments(raw), 'boundary')) push(v);
  // Where readers disagree on the boundary, some give up on it and guess one from the body.
  if (out.length > 1 && !out.includes(null)) out.push(null);
  return out;
}

/** A parameter as Python's email package reads it (email.message._parseparam, utils.unquote). */
function pythonParam(raw: string, name: string): string | undefined {
  for (const piece of splitParams(raw).slice(1)) {
    const eq = piece.indexOf('=');
    if (eq <= 0 || piece.slice(0, eq).trim().toLowerCase() !== name) continue;
    const v = piece.slice(eq + 1).trim();
    return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
  }
  return undefined;
}

/** Values of a plain (non-RFC 2231) parameter in order, quoted or not, as a strict split gives them. */
function allPlain(raw: string, name: string): string[] {
  const out: string[] = [];
  for (const piece of splitParams(stripComments(raw))) {
    const eq = piece.indexOf('=');
    if (eq <= 0 || piece.slice(0, eq).trim().toLowerCase() !== name) continue;
    out.push(unquote(piece.slice(eq + 1).trim()));
  }
  return out;
}

/** A lenient scan for `name=` anywhere: a quoted value up to its close (or the end), or a token. */
function scan(raw: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`(?:^|[\\s;(])${name}\\s*=\\s*`, 'gi');
  for (let m = re.exec(raw); m !== null; m = re.exec(raw)) {
    const rest = raw.slice(m.index + m[0].length);
    if (rest.startsWith('"')) {
      const close = rest.indexOf('"', 1);
      out.push(close === -1 ? rest.slice(1).replace(/[;\s].*$/s, '') : rest.slice(1, close));
      if (close === -1) out.push(rest.slice(1)); // an unclosed quote runs to the end of the field
    } else {
      const tok = /^[^\s;"()]+/.exec(rest);
      if (tok) out.push(tok[0]);
    }
  }
  return out;
}

/** File names from every Content-Type `name` and Content-Disposition `filename`, in every form. */
function nameCandidates(cts: readonly string[], cds: readonly string[]): string[] {
  const out: string[] = [];
  const push = (v: string | undefined): void => {
    if (v !== undefined && v !== '' && !out.includes(v)) out.push(v);
  };
  const structured = (raws: readonly string[]): StructuredValue[] => raws.map((r) => parseStructured(r));
  const cdsParsed = structured(cds);
  const ctsParsed = structured(cts);
  // The one shown first: as before, the first disposition's filename, else the type's name.
  push(cdsParsed[0]?.params.get('filename') ?? ctsParsed[0]?.params.get('name'));
  for (const cd of cds) for (const v of allPlain(cd, 'filename')) push(v);
  for (const cd of cdsParsed) push(cd.params.get('filename'));
  for (const ct of cts) for (const v of allPlain(ct, 'name')) push(v);
  for (const ct of ctsParsed) push(ct.params.get('name'));
  for (const raw of [...cds, ...cts]) for (const v of scan(raw, '(?:file)?name')) push(v);
  return out.slice(0, MAX_READINGS);
}

function dedupe<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function unquote(s: string): string {
  if (s.startsWith('"')) {
    const close = s.indexOf('"', 1);
    return (close === -1 ? s.slice(1) : s.slice(1, close)).replace(/\\(.)/g, '$1');
  }
  return s;
}
