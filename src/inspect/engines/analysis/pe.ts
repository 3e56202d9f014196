/**
 * Windows executables (PE): headers parsed within the file's bounds, never trusted. Indicators:
 * imports used for process injection or download-and-execute, packer section names, sections
 * with near-random content (packed or encrypted code), no Authenticode signature, and a name
 * that hides the type.
 */

import type { Analyzer, AnalyzerInput, Indicator } from './types.ts';

const INJECTION = ['VirtualAllocEx', 'WriteProcessMemory', 'CreateRemoteThread', 'NtUnmapViewOfSection', 'QueueUserAPC', 'SetThreadContext'];
const DOWNLOAD = ['URLDownloadToFileA', 'URLDownloadToFileW', 'InternetOpenUrlA', 'InternetOpenUrlW', 'WinHttpOpen'];
const EXECUTE = ['WinExec', 'ShellExecuteA', 'ShellExecuteW', 'ShellExecuteExW', 'CreateProcessA', 'CreateProcessW'];
const PACKERS = ['UPX0', 'UPX1', '.aspack', '.adata', '.packed', 'MPRESS1', '.themida', '.vmp0', '.vmp1', 'PEC2', '.petite', '.nsp0'];

export const peAnalyzer: Analyzer = {
  id: 'pe@1',
  applies: (i) => i.detectedType === 'exe' || i.detectedType === 'dll',
  analyze(input: AnalyzerInput): Indicator[] {
    const b = input.bytes;
    const out: Indicator[] = [];
    const add = (score: number, reason: string): number => out.push({ analyzer: 'pe', score, reason });
    if (b.length < 0x40) return [{ analyzer: 'pe', score: 10, reason: 'truncated executable header' }];
    const pe = b.readUInt32LE(0x3c);
    if (pe + 24 > b.length || b.toString('latin1', pe, pe + 4) !== 'PE\0\0') {
      add(10, 'MZ executable without a valid PE header');
      return out;
    }
    const sections = b.readUInt16LE(pe + 6);
    const optSize = b.readUInt16LE(pe + 20);
    const opt = pe + 24;
    const magic = opt + 2 <= b.length ? b.readUInt16LE(opt) : 0;
    const pe32plus = magic === 0x20b;
    const dirs = opt + (pe32plus ? 112 : 96);
    const dir = (i: number): { rva: number; size: number } =>
      dirs + i * 8 + 8 <= b.length && dirs + i * 8 + 8 <= opt + optSize ? { rva: b.readUInt32LE(dirs + i * 8), size: b.readUInt32LE(dirs + i * 8 + 4) } : { rva: 0, size: 0 };
    const table = opt + optSize;
    const secs: { name: string; va: number; vsize: number; raw: number; rawSize: number }[] = [];
    for (let i = 0; i < Math.min(sections, 96); i++) {
      const s = table + i * 40;
      if (s + 40 > b.length) break;
      secs.push({
        name: b.toString('latin1', s, s + 8).replace(/\0.*$/s, ''),
        vsize: b.readUInt32LE(s + 8), va: b.readUInt32LE(s + 12), rawSize: b.readUInt32LE(s + 16), raw: b.readUInt32LE(s + 20),
      });
    }
    const packers = secs.filter((s) => PACKERS.includes(s.name)).map((s) => s.name);
    if (packers.length) add(25, `packer section names (${packers.join(', ')})`);
    for (const s of secs) {
      const data = b.subarray(s.raw, Math.min(b.length, s.raw + s.rawSize));
      if (data.length >= 4096 && entropy(data) > 7.2) {
        add(15, `section ${s.name || '(unnamed)'} has near-random content (entropy ${entropy(data).toFixed(2)}): packed or encrypted code`);
        break;
      }
    }
    const offsetOf = (rva: number): number => {
      const s = secs.find((x) => rva >= x.va && rva < x.va + Math.max(x.vsize, x.rawSize));
      return s ? rva - s.va + s.raw : -1;
    };
    const imports = new Set<string>();
    const imp = dir(1);
    for (let d = offsetOf(imp.rva), n = 0; d >= 0 && d + 20 <= b.length && n < 256; d += 20, n++) {
      const nameRva = b.readUInt32LE(d + 12);
      if (nameRva === 0) break;
      const thunkRva = b.readUInt32LE(d) || b.readUInt32LE(d + 16);
      for (let t = offsetOf(thunkRva), k = 0; t >= 0 && t + (pe32plus ? 8 : 4) <= b.length && k < 4096; t += pe32plus ? 8 : 4, k++) {
        const entry = pe32plus ? Number(b.readBigUInt64LE(t) & 0x7fffffffffffffffn) : b.readUInt32LE(t);
        if (entry === 0) break;
        if (pe32plus ? (b.readBigUInt64LE(t) >> 63n) === 1n : (entry & 0x80000000) !== 0) continue; // by ordinal
        const hint = offsetOf(entry);
        if (hint < 0 || hint + 2 >= b.length) continue;
        const end = b.indexOf(0, hint + 2);
        if (end > hint + 2 && end - hint < 256) imports.add(b.toString('latin1', hint + 2, end));
      }
    }
    const injection = INJECTION.filter((f) => imports.has(f));
    if (injection.length >= 2) add(60, `imports for injecting code into other processes (${injection.join(', ')})`);
    const download = DOWNLOAD.filter((f) => imports.has(f));
    const execute = EXECUTE.filter((f) => imports.has(f));
    if (download.length && execute.length) add(40, `imports to download a file and run it (${[...download, ...execute].join(', ')})`);
    if (dir(4).size === 0) add(10, 'no Authenticode signature');
    if (input.flags.includes('double-extension') || input.flags.includes('rtlo')) add(40, `executable named to look like something else (${input.name})`);
    else if (input.flags.includes('type-mismatch')) add(30, `executable named ${input.name}`);
    return out;
  },
};

/** Shannon entropy in bits per byte over at most the first 64 KiB (bounded work). */
export function entropy(data: Buffer): number {
  const counts = new Uint32Array(256);
  const n = Math.min(data.length, 65536);
  for (let i = 0; i < n; i++) counts[data[i]!]!++;
  let h = 0;
  for (const c of counts) if (c) h -= (c / n) * Math.log2(c / n);
  return h;
}
