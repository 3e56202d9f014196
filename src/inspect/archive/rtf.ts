/**
 * RTF embedded objects: `\objdata` groups hold an OLE1 object as hex digits — with whitespace,
 * line breaks, stray control words and nested groups mixed in, as exploit documents write them
 * to defeat naive readers (Word skips them all) — and `\bin N` may carry N raw bytes instead.
 * Each object's bytes are a member `(objdata N)`; its OLE1 native data (an OLE2 compound file
 * for embedded documents, opened by ole.ts) is a member `(object N)`, and a `Package` object's
 * file comes out under its own name.
 *
 * Bounded by the container limit (the RTF is kept whole) and at most MAX_OBJECTS per file.
 */

import { ole10Native } from './ole.ts';
import { cleanMemberName, type UnpackContext, type UnpackOutcome } from './types.ts';

const MAX_OBJECTS = 64;

/** The bytes of the `\objdata` group that starts at `at` (just after the control word). */
function objdata(s: string, at: number): Buffer {
  const out: number[] = [];
  let depth = 1; // inside the group that holds \objdata
  let nibble = -1;
  for (let i = at; i < s.length && depth > 0; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x7b) {
      // {\* …}: an ignorable destination; Word skips all of it, hex-looking text included.
      if (s.startsWith('\\*', i + 1)) {
        let d = 1;
        for (i++; i < s.length && d > 0; i++) d += s[i] === '{' ? 1 : s[i] === '}' ? -1 : 0;
        i--;
        continue;
      }
      depth++;
    } else if (c === 0x7d) depth--;
    else if (c === 0x5c) {
      // A control word (skipped: Word ignores what it does not know), or \bin N raw bytes.
      const m = /^\\([a-zA-Z]{1,32})(-?\d{1,10})? ?/.exec(s.slice(i, i + 48));
      if (!m) {
        i++; // a control symbol such as \' or \*
        continue;
      }
      if (m[1] === 'bin' && m[2] !== undefined) {
        const n = Math.max(0, Number(m[2]));
        const start = i + m[0].length;
        for (let k = start; k < Math.min(s.length, start + n); k++) out.push(s.charCodeAt(k) & 0xff);
        i = start + n - 1;
        continue;
      }
      i += m[0].length - 1;
    } else if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) {
      const v = c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
      if (nibble === -1) nibble = v;
      else {
        out.push((nibble << 4) | v);
        nibble = -1;
      }
    }
  }
  return Buffer.from(out);
}

/** OLE1 ObjectHeader ([MS-OLEDS] 2.2.4): class name and native data, or null. */
function ole1(b: Buffer): { className: string; native: Buffer } | null {
  let at = 8; // OLEVersion, FormatID
  const str = (): string | null => {
    if (at + 4 > b.length) return null;
    const n = b.readUInt32LE(at);
    if (n > 4096 || at + 4 + n > b.length) return null;
    const v = b.toString('latin1', at + 4, at + 4 + n).replace(/\0+$/, '');
    at += 4 + n;
    return v;
  };
  const className = str();
  if (className === null || str() === null || str() === null || at + 4 > b.length) return null;
  const size = b.readUInt32LE(at);
  return { className, native: b.subarray(at + 4, Math.min(b.length, at + 4 + size)) };
}

export async function unpackRtf(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const s = b.toString('latin1');
  let n = 0;
  for (let at = s.indexOf('\\objdata'); at !== -1 && n < MAX_OBJECTS && !ctx.stopped; at = s.indexOf('\\objdata', at + 8)) {
    if (/[a-zA-Z]/.test(s[at + 8] ?? '')) continue; // \objdatax is another word
    const data = objdata(s, at + 8);
    if (data.length === 0) continue;
    n++;
    const raw = ctx.member(`(objdata ${n})`);
    if (raw === null) break;
    if (!ctx.copy(raw, data)) break;
    raw.end();
    const obj = ole1(data);
    if (!obj) continue;
    const pkg = obj.className === 'Package' ? ole10Native(Buffer.concat([Buffer.alloc(4), obj.native])) : null;
    const sink = ctx.member(pkg ? cleanMemberName(pkg.name) : `(object ${n}) ${cleanMemberName(obj.className)}`);
    if (sink === null) break;
    if (!ctx.copy(sink, pkg ? pkg.data : obj.native)) break;
    sink.end();
  }
  return {};
}
