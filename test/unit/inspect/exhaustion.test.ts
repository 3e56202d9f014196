/**
 * Messages built to exhaust the inspector: 10,000 MIME parts, multiparts nested 1,000 deep,
 * message/rfc822 nested 200 deep, base64 inside base64 twenty times, a zip of 20,000 members. Each hits its cap, raises its event
 * (which the policy does not treat as clean), finishes quickly and leaves memory bounded
 * (generous margins: these are guards against blow-ups, not benchmarks).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { zip } from '../../helpers/archives.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });

async function scanTimed(msg: Buffer, asMessage = true) {
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  const r = await inspector.scanBuffer(msg, asMessage, 60_000, 'x');
  return { r, ms: Date.now() - t0, rssMiB: (process.memoryUsage().rss - rss0) / 2 ** 20 };
}

describe('resource exhaustion', () => {
  it('10,000 MIME parts: capped at mime-parts, event raised, fast', async () => {
    let s = 'Content-Type: multipart/mixed; boundary=b\r\n\r\n';
    for (let i = 0; i < 10_000; i++) s += `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`;
    const { r, ms, rssMiB } = await scanTimed(Buffer.from(`${s}--b--\r\n`));
    assert.ok(r.events.some((e) => e.name === 'MIME_PARTS_EXCEEDED'));
    assert.ok(r.files.length <= 1002, `${r.files.length} files`);
    assert.ok(ms < 20_000, `${ms} ms`);
    assert.ok(rssMiB < 300, `${rssMiB} MiB`);
  });

  it('multiparts nested 1,000 deep: capped at mime-depth, event raised', async () => {
    let s = '';
    for (let i = 0; i < 1000; i++) s += `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`;
    const { r, ms } = await scanTimed(Buffer.from(`${s}Content-Type: text/plain\r\n\r\ndeep\r\n`));
    assert.ok(r.events.some((e) => e.name === 'MIME_DEPTH_EXCEEDED'));
    assert.ok(ms < 20_000, `${ms} ms`);
  });

  it('message/rfc822 nested 200 deep, each level base64-free: capped, event raised', async () => {
    const s = 'Content-Type: message/rfc822\r\n\r\n'.repeat(200);
    const { r } = await scanTimed(Buffer.from(`${s}Subject: core\r\n\r\nbody\r\n`));
    assert.ok(r.events.some((e) => e.name === 'MIME_DEPTH_EXCEEDED'));
  });

  it('base64 inside base64 twenty times (encoded message/rfc822 parts): EICAR at the core found, 20 layers counted; deeper: the cap is raised', async () => {
    const { EICAR } = await import('../../../src/inspect/engines/signatures.ts');
    const wrap = (inner: string): string =>
      `Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(inner, 'latin1').toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;
    const nested = (levels: number): Buffer => {
      let msg = `Subject: core\r\n\r\n${EICAR.toString('latin1')}\r\n`;
      for (let i = 0; i < levels; i++) msg = wrap(msg);
      return Buffer.from(msg, 'latin1');
    };
    // Before this was walked, two levels were enough to hide EICAR from the inspector.
    const { r, ms, rssMiB } = await scanTimed(nested(20));
    const core = r.findings.find((f) => f.threat === 'EICAR-Test-File');
    assert.equal(core?.file.path, `msg${'/1'.repeat(20)}`);
    assert.equal(core?.file.layers, 20, 'each base64 level counts as a layer (file blocking: multi-encoding)');
    assert.ok(ms < 20_000, `${ms} ms`);
    assert.ok(rssMiB < 300, `${rssMiB} MiB`);
    const deeper = await inspector.scanBuffer(nested(30), true, 60_000);
    assert.ok(deeper.events.some((e) => e.name === 'MIME_DEPTH_EXCEEDED'), 'past mime-depth: the event, never a silent pass');
  });

  it('1,000 AES members and 50 wrong passwords in the text: candidates tried once per archive, not per member', async () => {
    const members = Array.from({ length: 1000 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from(`secret ${i}`), aes: { password: 'the-real-one' } }));
    const words = Array.from({ length: 50 }, (_, i) => `guess${i}`).join(' ');
    const msg = Buffer.from(
      `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${words}\r\n--b\r\n` +
        `Content-Type: application/zip; name=a.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${zip(members).toString('base64')}\r\n--b--\r\n`,
    );
    // 50 PBKDF2 derivations, not 50,000 (which take tens of seconds here).
    const { r, ms } = await scanTimed(msg);
    assert.equal(r.events.filter((e) => e.name === 'ARCHIVE_ENCRYPTED').length, 1000);
    assert.ok(ms < 10_000, `${ms} ms`);
  });

  it('a zip of 20,000 members: capped at archive-files, event raised, bounded', async () => {
    const members = Array.from({ length: 20_000 }, (_, i) => ({ name: `f${i}`, data: Buffer.from('x'), method: 'stored' as const }));
    const { r, ms, rssMiB } = await scanTimed(zip(members), false);
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_FILES_EXCEEDED'));
    assert.ok(r.files.length <= 10_002, `${r.files.length} files`);
    assert.ok(ms < 30_000, `${ms} ms`);
    assert.ok(rssMiB < 500, `${rssMiB} MiB`);
  });
});

describe('containers kept in memory', () => {
  it('nested archives waiting to be unpacked share one budget per message; past it: ARCHIVE_TOO_LARGE, nothing lost', async () => {
    // Three 1 MB zips inside one deflated zip (small on the wire; the ratio limit is raised so
    // it does not stop them first): each inner zip is kept whole until its turn; with a 2.5 MB
    // budget the third does not fit.
    const { DEFAULT_ARCHIVE_LIMITS } = await import('../../../src/inspect/archive/unpack.ts');
    const limited = new Inspector({ engines: [new SignatureEngine()], archives: { ...DEFAULT_ARCHIVE_LIMITS, maxContainerBytes: 2.5 * 1024 * 1024, maxRatio: 100_000 } });
    const inner = (n: number) => zip([{ name: `big${n}.bin`, data: Buffer.alloc(1024 * 1024, n), method: 'stored' }]);
    const outer = zip([1, 2, 3].map((n) => ({ name: `inner${n}.zip`, data: inner(n) })));
    const r = await limited.scanBuffer(outer, false, 60_000, 'outer.zip');
    const tooLarge = r.events.filter((e) => e.name === 'ARCHIVE_TOO_LARGE').map((e) => e.where);
    assert.deepEqual(tooLarge, ['outer.zip/inner3.zip']);
    const paths = r.files.map((f) => f.path);
    assert.ok(paths.includes('outer.zip/inner1.zip/big1.bin') && paths.includes('outer.zip/inner2.zip/big2.bin'));
    assert.ok(paths.includes('outer.zip/inner3.zip'), 'the third is still scanned whole');
    // With the default budget all three are unpacked.
    const roomy = new Inspector({ engines: [new SignatureEngine()], archives: { ...DEFAULT_ARCHIVE_LIMITS, maxRatio: 100_000 } });
    const all = await roomy.scanBuffer(outer, false, 60_000, 'outer.zip');
    assert.deepEqual(all.events.filter((e) => e.name === 'ARCHIVE_TOO_LARGE'), []);
  });
});
