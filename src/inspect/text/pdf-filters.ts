/**
 * PDF stream filters (ISO 32000-1 §7.4): the standard decoders a reader applies to a stream
 * before it is a file or text — FlateDecode and LZWDecode with their predictors (PNG 10–15,
 * TIFF 2), ASCIIHexDecode, ASCII85Decode, RunLengthDecode — in the order the /Filter array
 * names them, each bounded by `cap` output bytes. Image codecs (DCT, JPX, JBIG2, CCITT) are
 * not decoded: nothing a user opens comes out of them as a file.
 */

import { promisify } from 'node:util';
import { inflateRaw, constants as zlibConstants } from 'node:zlib';

const inflateRawAsync = promisify(inflateRaw);

const ABBREVIATIONS: Readonly<Record<string, string>> = {
  AHx: 'ASCIIHexDecode', A85: 'ASCII85Decode', LZW: 'LZWDecode', Fl: 'FlateDecode', RL: 'RunLengthDecode',
  CCF: 'CCITTFaxDecode', DCT: 'DCTDecode',
};

/** Names with `#xx` escapes (PDF 1.2+) as a reader sees them: `/Embedded#46ile` is /EmbeddedFile. */
export function unescapeNames(dict: string): string {
  return dict.replace(/(\/[^\s/<>[\]()]*)/g, (name) => name.replace(/#([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
}

/** The filters of a stream dictionary (names unescaped), in application order. */
export function filtersOf(dict: string): string[] {
  const m = /\/Filter\s*(\[[^\]]*\]|\/[A-Za-z0-9]+)/.exec(dict);
  if (!m) return [];
  return [...m[1]!.matchAll(/\/([A-Za-z0-9]+)/g)].map((x) => ABBREVIATIONS[x[1]!] ?? x[1]!);
}

export type Decoded = { readonly ok: true; readonly data: Buffer } | { readonly ok: false; readonly why: 'unsupported' | 'corrupt' | 'too large'; readonly filter: string };

/** Apply the stream's filters to `raw`; at most `cap` bytes out of each stage. */
export async function decodeStream(raw: Buffer, dict: string, cap: number): Promise<Decoded> {
  const filters = filtersOf(dict);
  const parms = /\/DecodeParms\s*(<<(?:[^<>]|<<[^<>]*>>)*>>|\[[^\]]*\])/.exec(dict)?.[1] ?? '';
  let data = raw;
  for (const [i, f] of filters.entries()) {
    // DecodeParms: one dictionary for one filter, or an array (one per filter, `null` for none).
    const p = parms.startsWith('[') ? ([...parms.matchAll(/<<(?:[^<>]|<<[^<>]*>>)*>>|null/g)][i]?.[0] ?? '') : parms;
    let out: Buffer | null;
    switch (f) {
      case 'FlateDecode':
        out = await inflateZlib(data, cap);
        break;
      case 'LZWDecode':
        out = lzw(data, cap, !/\/EarlyChange\s+0\b/.test(p));
        break;
      case 'ASCIIHexDecode':
        out = asciiHex(data);
        break;
      case 'ASCII85Decode':
        out = ascii85(data);
        break;
      case 'RunLengthDecode':
        out = runLength(data, cap);
        break;
      default:
        return { ok: false, why: 'unsupported', filter: f };
    }
    if (out === null) return { ok: false, why: 'corrupt', filter: f };
    if (out.length >= cap && cap > 0 && (f === 'FlateDecode' || f === 'LZWDecode' || f === 'RunLengthDecode')) return { ok: false, why: 'too large', filter: f };
    if ((f === 'FlateDecode' || f === 'LZWDecode') && /\/Predictor\s+(\d+)/.test(p)) out = predicted(out, p);
    if (out === null) return { ok: false, why: 'corrupt', filter: f };
    data = out;
  }
  return { ok: true, data };
}

/** zlib (RFC 1950) inflated with an output cap; a damaged stream gives what came before the damage. */
async function inflateZlib(raw: Buffer, cap: number): Promise<Buffer | null> {
  const body = raw.length > 2 && (raw[0]! & 0x0f) === 8 && ((raw[0]! << 8) | raw[1]!) % 31 === 0 ? raw.subarray(2) : raw;
  try {
    return await inflateRawAsync(body, { maxOutputLength: Math.max(1, cap), finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (err) {
    // Past the cap zlib throws: report it as a full output so the caller says "too large".
    return (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? Buffer.alloc(cap) : null;
  }
}

function asciiHex(b: Buffer): Buffer {
  const s = b.toString('latin1');
  const end = s.indexOf('>');
  const hex = (end === -1 ? s : s.slice(0, end)).replace(/[^0-9a-fA-F]/g, '');
  return Buffer.from(hex.length % 2 ? `${hex}0` : hex, 'hex');
}

function ascii85(b: Buffer): Buffer | null {
  let s = b.toString('latin1').replace(/\s+/g, '');
  if (s.startsWith('<~')) s = s.slice(2);
  const end = s.indexOf('~>');
  if (end !== -1) s = s.slice(0, end);
  const out: number[] = [];
  let group: number[] = [];
  for (const ch of s) {
    if (ch === 'z' && group.length === 0) {
      out.push(0, 0, 0, 0);
      continue;
    }
    const c = ch.charCodeAt(0) - 33;
    if (c < 0 || c > 84) return null;
    group.push(c);
    if (group.length === 5) {
      const v = group.reduce((a, d) => a * 85 + d, 0);
      out.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
      group = [];
    }
  }
  if (group.length > 1) {
    const n = group.length - 1;
    while (group.length < 5) group.push(84);
    const v = group.reduce((a, d) => a * 85 + d, 0);
    out.push(...[(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].slice(0, n));
  }
  return Buffer.from(out);
}

function runLength(b: Buffer, cap: number): Buffer {
  const out: Buffer[] = [];
  let size = 0;
  for (let i = 0; i < b.length && size < cap; ) {
    const n = b[i]!;
    if (n === 128) break;
    if (n < 128) {
      const run = b.subarray(i + 1, i + 2 + n);
      out.push(run);
      size += run.length;
      i += 2 + n;
    } else {
      const run = Buffer.alloc(257 - n, b[i + 1] ?? 0);
      out.push(run);
      size += run.length;
      i += 2;
    }
  }
  return Buffer.concat(out).subarray(0, cap);
}

/** LZW as PDF and TIFF use it: 9–12 bit codes, 256 clear, 257 end; EarlyChange 1 by default. */
function lzw(b: Buffer, cap: number, early: boolean): Buffer | null {
  const out = Buffer.alloc(Math.min(cap, Math.max(1024, b.length * 8)));
  let outLen = 0;
  let grow = out;
  const dict: Buffer[] = [];
  const reset = (): void => {
    dict.length = 0;
    for (let i = 0; i < 256; i++) dict.push(Buffer.from([i]));
    dict.push(Buffer.alloc(0), Buffer.alloc(0)); // 256, 257
  };
  reset();
  let width = 9;
  let prev: Buffer | null = null;
  let bits = 0;
  let acc = 0;
  const emit = (s: Buffer): boolean => {
    if (outLen + s.length > grow.length) {
      if (grow.length >= cap) return false;
      const bigger = Buffer.alloc(Math.min(cap, Math.max(grow.length * 2, outLen + s.length)));
      grow.copy(bigger, 0, 0, outLen);
      grow = bigger;
    }
    const n = Math.min(s.length, grow.length - outLen);
    s.copy(grow, outLen, 0, n);
    outLen += n;
    return n === s.length;
  };
  for (const byte of b) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= width) {
      const code = (acc >>> (bits - width)) & ((1 << width) - 1);
      bits -= width;
      acc &= (1 << bits) - 1;
      if (code === 256) {
        reset();
        width = 9;
        prev = null;
        continue;
      }
      if (code === 257) return grow.subarray(0, outLen);
      let entry: Buffer;
      if (code < dict.length) entry = dict[code]!;
      else if (code === dict.length && prev) entry = Buffer.concat([prev, prev.subarray(0, 1)]);
      else return outLen ? grow.subarray(0, outLen) : null;
      if (!emit(entry)) return grow.subarray(0, outLen);
      if (prev && dict.length < 4096) dict.push(Buffer.concat([prev, entry.subarray(0, 1)]));
      prev = entry;
      const limit = dict.length + (early ? 1 : 0);
      if (limit >= 512 && width === 9) width = 10;
      else if (limit >= 1024 && width === 10) width = 11;
      else if (limit >= 2048 && width === 11) width = 12;
    }
  }
  return grow.subarray(0, outLen);
}

/** PNG (10–15: a filter byte per row) and TIFF (2) predictors, per /Columns, /Colors, /BitsPerComponent. */
function predicted(data: Buffer, parms: string): Buffer | null {
  const num = (k: string, d: number): number => Number(new RegExp(`/${k}\\s+(\\d+)`).exec(parms)?.[1] ?? d);
  const predictor = num('Predictor', 1);
  if (predictor < 2) return data;
  const bpp = Math.max(1, Math.ceil((num('Colors', 1) * num('BitsPerComponent', 8)) / 8));
  const row = Math.ceil((num('Columns', 1) * num('Colors', 1) * num('BitsPerComponent', 8)) / 8);
  if (row <= 0 || row > 1 << 20) return null;
  if (predictor === 2) {
    const out = Buffer.from(data);
    for (let r = 0; r + row <= out.length; r += row) for (let i = bpp; i < row; i++) out[r + i] = (out[r + i]! + out[r + i - bpp]!) & 255;
    return out;
  }
  const rows = Math.floor(data.length / (row + 1));
  const out = Buffer.alloc(rows * row);
  for (let r = 0; r < rows; r++) {
    const type = data[r * (row + 1)]!;
    const src = data.subarray(r * (row + 1) + 1, (r + 1) * (row + 1));
    const at = r * row;
    for (let i = 0; i < row; i++) {
      const left = i >= bpp ? out[at + i - bpp]! : 0;
      const up = r > 0 ? out[at - row + i]! : 0;
      const ul = r > 0 && i >= bpp ? out[at - row + i - bpp]! : 0;
      let v = src[i]!;
      if (type === 1) v += left;
      else if (type === 2) v += up;
      else if (type === 3) v += (left + up) >> 1;
      else if (type === 4) {
        const p = left + up - ul;
        const pa = Math.abs(p - left);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - ul);
        v += pa <= pb && pa <= pc ? left : pb <= pc ? up : ul;
      }
      out[at + i] = v & 255;
    }
  }
  return out;
}
