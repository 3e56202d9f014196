/**
 * Office documents. OLE2 (and vbaProject.bin inside OOXML, which the inspector hands over as a
 * file of its own): VBA modules are found by their compressed "Attribute" header and
 * decompressed (MS-OVBA 2.4.1), so the source is read — auto-exec entry points and the calls
 * that make a macro dangerous. OOXML parts (XML members of docx/xlsx): external template
 * injection, DDE fields, XLM 4.0 macro sheets.
 */

import type { Analyzer, AnalyzerInput, Indicator } from './types.ts';

const AUTO_EXEC = /\b(Auto_?Open|AutoExec|AutoClose|Document_Open|Document_Close|DocumentOpen|Workbook_Open|Workbook_Activate|Auto_Close|Presentation_Open)\b/gi;
const DANGEROUS: ReadonlyArray<readonly [RegExp, string, number]> = [
  [/\b(Shell|WScript\.Shell|ShellExecute)\b/i, 'starts a process', 35],
  [/\bCreateObject\s*\(/i, 'creates COM objects', 15],
  [/URLDownloadToFile|MSXML2\.XMLHTTP|WinHttp\.WinHttpRequest|Microsoft\.XMLHTTP/i, 'downloads from the internet', 30],
  [/powershell|cmd(\.exe)?\s*\/c|mshta/i, 'runs PowerShell, cmd or mshta', 30],
  [/\b(CallByName|ExecuteExcel4Macro|MacScript)\b/i, 'calls code by name (evasion)', 15],
  [/ADODB\.Stream|SaveToFile/i, 'writes files to disk', 15],
  [/Chr[WB]?\s*\(\s*\d+\s*\)\s*&\s*Chr/i, 'builds strings from character codes (obfuscation)', 15],
];

export const officeAnalyzer: Analyzer = {
  id: 'office@1',
  applies: (i) => ['cfb', 'doc', 'xls', 'ppt', 'msg', 'xml', 'text'].includes(i.detectedType) || i.flags.includes('macros'),
  analyze(input: AnalyzerInput): Indicator[] {
    const out: Indicator[] = [];
    const add = (score: number, reason: string): number => out.push({ analyzer: 'office', score, reason });
    if (['cfb', 'doc', 'xls', 'ppt', 'msg'].includes(input.detectedType)) {
      const source = vbaSources(input.bytes).join('\n');
      if (source) {
        const entries = [...new Set([...source.matchAll(AUTO_EXEC)].map((m) => m[1]!))];
        const calls = DANGEROUS.filter(([re]) => re.test(source));
        if (entries.length) add(25, `macro runs on open (${entries.join(', ')})`);
        for (const [, what, score] of calls) add(entries.length ? score : Math.round(score / 2), `macro ${what}`);
        if (entries.length && calls.length) out[0] = { ...out[0]!, reason: `macro runs on open and ${calls[0]![1]} (${entries[0]} → ${calls.map((c) => c[1]).join(', ')})` };
        if (!entries.length && !calls.length) add(10, 'contains VBA macros');
      } else if (input.flags.includes('macros')) add(15, 'contains a VBA project (source not readable: stomped or damaged)');
      return out;
    }
    const text = input.bytes.toString('latin1', 0, Math.min(input.bytes.length, 2 * 1024 * 1024));
    if (/attachedTemplate[^>]*Target="https?:\/\/|Target="https?:\/\/[^"]*"[^>]*TargetMode="External"[^>]*attachedTemplate/i.test(text) ||
        (/relationships\/attachedTemplate/i.test(text) && /TargetMode="External"/i.test(text))) {
      add(60, 'loads a remote template (template injection)');
    }
    if (/\b(DDEAUTO|DDE)\b[^<]{0,200}\b(cmd|powershell|mshta|\.exe)/i.test(text)) add(60, 'DDE field that runs a command');
    if (/<(?:\w+:)?(xm:)?macrosheet\b|\/macrosheets\//i.test(text)) add(40, 'XLM 4.0 macro sheet');
    return out;
  },
};

/** Every VBA module's source found in an OLE file (compressed containers located by header). */
export function vbaSources(bytes: Buffer): string[] {
  const out: string[] = [];
  const marker = Buffer.from('\x00Attribut', 'latin1');
  for (let i = bytes.indexOf(marker), n = 0; i !== -1 && n < 256; i = bytes.indexOf(marker, i + 1), n++) {
    const start = i - 3;
    if (start < 0 || bytes[start] !== 0x01) continue;
    const src = decompressVba(bytes, start);
    if (src && /^Attribute /.test(src)) out.push(src);
  }
  return out;
}

/** MS-OVBA 2.4.1 decompression of a CompressedContainer at `at`; null if it is not one. */
export function decompressVba(b: Buffer, at: number, maxOut = 1024 * 1024): string | null {
  if (b[at] !== 0x01) return null;
  const out: number[] = [];
  let p = at + 1;
  while (p + 2 <= b.length && out.length < maxOut) {
    const header = b.readUInt16LE(p);
    const size = (header & 0x0fff) + 3;
    if (((header >> 12) & 0x7) !== 0b011) break;
    const compressed = (header & 0x8000) !== 0;
    const end = Math.min(b.length, p + size);
    const chunkStart = out.length;
    p += 2;
    if (!compressed) {
      for (; p < end && out.length - chunkStart < 4096; p++) out.push(b[p]!);
      p = end;
      continue;
    }
    while (p < end) {
      const flags = b[p++]!;
      for (let bit = 0; bit < 8 && p < end; bit++) {
        if ((flags & (1 << bit)) === 0) {
          out.push(b[p++]!);
          continue;
        }
        if (p + 2 > end) return null;
        const token = b.readUInt16LE(p);
        p += 2;
        const done = out.length - chunkStart;
        let bitCount = 4;
        while (1 << bitCount < done) bitCount++;
        bitCount = Math.max(bitCount, 4);
        const lengthMask = 0xffff >> bitCount;
        const length = (token & lengthMask) + 3;
        const offset = (token >> (16 - bitCount)) + 1;
        if (offset > done) return null;
        for (let k = 0; k < length; k++) out.push(out[out.length - offset]!);
      }
    }
  }
  return Buffer.from(out).toString('latin1');
}
