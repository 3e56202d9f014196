/**
 * Inspection throughput (part of `npm run bench`; alone with `npm run bench -- --inspect`):
 * the inspector in-process on the same bytes three ways, side by side with clamd scanning the
 * same bytes over INSTREAM (clamd decodes MIME and unpacks zips itself), and with plain
 * SHA-256 over the bytes as the floor any scanner pays.
 *
 *   plain 10 MB      a message with a 10 MB 8-bit text attachment
 *   base64 10 MB     a message with a 10 MB binary attachment, base64-encoded
 *   zip 1000 files   a message with a zip of 1000 deflated 10 KB files, base64-encoded
 *   mixed containers a message with a docx (its text and an embedded object), a PDF with an
 *                    embedded file (Flate), a 7z (written by 7zz, when installed) and an ISO
 *                    9660 image, base64-encoded: the inspector as the gateway builds it (7-Zip
 *                    reader included)
 *
 * Engines: the built-in signature engine with EICAR plus 1,000 generated .ndb body signatures
 * (so the one-pass matcher is measured with many signatures); clamd loads the same 1,000.
 * `unpacked` is the bytes the inspector produced and scanned (members of the zip: 10 MB).
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { SevenZipTool, sevenZipReader } from '../src/inspect/archive/seven-zip-tool.ts';
import { compileBodySignature } from '../src/inspect/engines/ndb.ts';
import { BUILTIN_PATTERNS, SignatureEngine } from '../src/inspect/engines/signatures.ts';
import { Inspector } from '../src/inspect/inspector.ts';
import { isoImage, zip } from '../test/helpers/archives.ts';

export interface InspectResult {
  readonly input: string;
  readonly bytes: number;
  readonly smtpwallMBps: number;
  readonly clamdMBps: number | null;
  readonly sha256MBps: number;
  readonly objects: number;
  readonly unpackedMB: number;
}

const CHUNK = 64 * 1024;

function message(headers: string, body: string): Buffer {
  return Buffer.from(
    `From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n` +
      `--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n${headers}\r\n\r\n${body}\r\n--b--\r\n`,
    'latin1',
  );
}

/** Deterministic incompressible bytes (no EICAR, no signature hit). */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

function inputs(): Array<{ input: string; bytes: Buffer }> {
  const words = 'the quick brown fox jumps over the lazy dog invoice payment schedule attached regards '.split(' ');
  let text = '';
  for (let i = 0; text.length < 10_000_000; i++) text += (i % 12 === 11 ? '\r\n' : `${words[i % words.length]} `);
  const files = Array.from({ length: 1000 }, (_, i) => ({ name: `dir/file-${i}.txt`, data: Buffer.from(text.slice(i * 10_000, (i + 1) * 10_000)) }));
  return [
    { input: 'plain 10 MB', bytes: message('Content-Type: text/plain; name="big.txt"\r\nContent-Transfer-Encoding: 8bit', text) },
    { input: 'base64 10 MB', bytes: message('Content-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64', noise(10_000_000, 7).toString('base64').replace(/(.{76})/g, '$1\r\n')) },
    { input: 'zip 1000 files', bytes: message('Content-Type: application/zip; name="many.zip"\r\nContent-Transfer-Encoding: base64', zip(files).toString('base64').replace(/(.{76})/g, '$1\r\n')) },
    { input: 'mixed containers', bytes: mixedContainers(text) },
  ];
}

const b64part = (name: string, type: string, data: Buffer): string =>
  `--b\r\nContent-Type: ${type}; name="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${data.toString('base64').replace(/(.{76})/g, '$1\r\n')}\r\n`;

/** A docx, a PDF with an embedded file, a 7z (when 7zz is installed) and an ISO, ~4 MB in all. */
function mixedContainers(text: string): Buffer {
  const prose = text.slice(0, 1_000_000);
  const docx = zip([
    { name: '[Content_Types].xml', data: Buffer.from('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>') },
    { name: 'word/document.xml', data: Buffer.from(`<?xml version="1.0"?><w:document><w:body><w:p><w:r><w:t>${prose}</w:t></w:r></w:p></w:body></w:document>`) },
    { name: 'word/embeddings/oleObject1.bin', data: noise(300_000, 11) },
  ]);
  const embedded = noise(500_000, 13);
  const packed = deflateSync(embedded);
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(x) 3 0 R] >> >> >>',
    '<< /Type /Pages /Kids [] /Count 0 >>',
    '<< /Type /Filespec /F (data.bin) /UF (data.bin) /EF << /F 4 0 R >> >>',
    Buffer.concat([Buffer.from(`<< /Type /EmbeddedFile /Filter /FlateDecode /Length ${packed.length} >>\nstream\n`, 'latin1'), packed, Buffer.from('\nendstream', 'latin1')]),
  ];
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n', 'latin1')];
  let at = parts[0]!.length;
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(at);
    const body = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), typeof o === 'string' ? Buffer.from(o, 'latin1') : o, Buffer.from('\nendobj\n')]);
    parts.push(body);
    at += body.length;
  });
  parts.push(Buffer.from(`xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${at}\n%%EOF\n`));
  const pdf = Buffer.concat(parts);
  const iso = isoImage([{ name: 'SETUP.BIN', data: noise(400_000, 17) }, { name: 'README.TXT', data: Buffer.from(prose.slice(0, 200_000)) }]);
  let sevenZ: Buffer | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-bench-7z-'));
  try {
    writeFileSync(join(dir, 'report.txt'), prose);
    writeFileSync(join(dir, 'data.bin'), noise(300_000, 19));
    execFileSync('7zz', ['a', '-bd', '-y', join(dir, 'a.7z'), 'report.txt', 'data.bin'], { cwd: dir, stdio: 'ignore' });
    sevenZ = readFileSync(join(dir, 'a.7z'));
  } catch {
    // 7zz not installed: the set has no 7z (the line says how many objects it had)
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const body =
    b64part('report.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', docx) +
    b64part('statement.pdf', 'application/pdf', pdf) +
    (sevenZ ? b64part('archive.7z', 'application/x-7z-compressed', sevenZ) : '') +
    b64part('disk.iso', 'application/x-iso9660-image', iso);
  return Buffer.from(`From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n${body}--b--\r\n`, 'latin1');
}

/** 1,000 .ndb lines (random bytes with a wildcard): loaded by the built-in engine and by clamd alike. */
export function benchNdbLines(): string[] {
  return Array.from({ length: 1000 }, (_, i) => {
    const word = createHash('sha256').update(String(i)).digest('hex').slice(0, 24);
    return `Bench.Sig.${i}:0:*:${word.slice(0, 12)}??${word.slice(14)}`;
  });
}

function engine(): SignatureEngine {
  const sigs = benchNdbLines().map((l) => {
    const [name, target, offset, hex] = l.split(':');
    return compileBodySignature(name!, Number(target), offset!, hex!);
  });
  return new SignatureEngine({ patterns: [...BUILTIN_PATTERNS, ...sigs] });
}

async function timeSmtpwall(inspector: Inspector, bytes: Buffer): Promise<{ seconds: number; objects: number; unpacked: number }> {
  const t0 = process.hrtime.bigint();
  const scan = inspector.begin();
  for (let i = 0; i < bytes.length; i += CHUNK) scan.write(bytes.subarray(i, i + CHUNK));
  const r = await scan.end(600_000);
  if (r.findings.length) throw new Error(`bench input has findings: ${r.findings.map((f) => f.threat).join(', ')}`);
  const unpacked = r.files.filter((f) => f.depth > 0).reduce((n, f) => n + f.size, 0);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, objects: r.files.length, unpacked };
}

function timeClamd(socket: string, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const s = connect({ path: socket });
    let reply = '';
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => {
      if (!/stream: OK/.test(reply)) reject(new Error(`clamd: ${reply}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e9);
    });
    s.write('zINSTREAM\0');
    for (let i = 0; i < bytes.length; i += CHUNK) {
      const piece = bytes.subarray(i, i + CHUNK);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(piece.length);
      s.write(len);
      s.write(piece);
    }
    s.write(Buffer.alloc(4));
  });
}

export async function runInspectBench(clamdSocket: string | null, rounds: number): Promise<InspectResult[]> {
  // The 7-Zip reader as the gateway configures it (engines.seven-zip.path: auto).
  const sevenZip = SevenZipTool.find('auto', 60_000, mkdtempSync(join(tmpdir(), 'smtpwall-bench-spool-')));
  const inspector = new Inspector({ engines: [engine()], readers: { '7z': sevenZipReader(sevenZip) } });
  const results: InspectResult[] = [];
  process.stdout.write('\ninspection throughput (in-process, best of rounds):\n');
  for (const { input, bytes } of inputs()) {
    let best = Infinity;
    let bestClamd = Infinity;
    let bestHash = Infinity;
    let objects = 0;
    let unpacked = 0;
    for (let r = 0; r < rounds; r++) {
      const s = await timeSmtpwall(inspector, bytes);
      best = Math.min(best, s.seconds);
      objects = s.objects;
      unpacked = s.unpacked;
      const h0 = process.hrtime.bigint();
      createHash('sha256').update(bytes).digest();
      bestHash = Math.min(bestHash, Number(process.hrtime.bigint() - h0) / 1e9);
      if (clamdSocket) bestClamd = Math.min(bestClamd, await timeClamd(clamdSocket, bytes));
    }
    const mb = bytes.length / 1e6;
    const res = {
      input, bytes: bytes.length, smtpwallMBps: mb / best, clamdMBps: clamdSocket ? mb / bestClamd : null, sha256MBps: mb / bestHash,
      objects, unpackedMB: unpacked / 1e6,
    };
    results.push(res);
    process.stdout.write(
      `  ${input.padEnd(15)} ${mb.toFixed(1).padStart(5)} MB  smtpwall ${res.smtpwallMBps.toFixed(1).padStart(5)} MB/s (${objects} objects` +
        `${unpacked ? `, ${(unpacked / 1e6).toFixed(0)} MB unpacked in ${(best * 1000).toFixed(0)} ms` : ''})` +
        `  clamd ${res.clamdMBps === null ? '    -' : res.clamdMBps.toFixed(1).padStart(5)} MB/s  sha256 ${res.sha256MBps.toFixed(0).padStart(4)} MB/s\n`,
    );
  }
  return results;
}
