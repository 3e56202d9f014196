import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { boundaryCandidates, partReadings } from '../../../src/inspect/mime/readings.ts';
import { parseHeaderBlock } from '../../../src/inspect/mime/headers.ts';
import type { ScanResult } from '../../../src/inspect/types.ts';
import { byteByByte, randomChunks } from '../../helpers/chunking.ts';
import { READING_CASES } from '../../fixtures/readings.ts';

async function scan(chunks: Buffer[]): Promise<ScanResult> {
  const s = new Inspector({ engines: [new SignatureEngine()] }).begin();
  for (const c of chunks) s.write(c);
  return s.end(5000);
}
const summary = (r: ScanResult) => ({
  findings: r.findings.map((f) => `${f.threat}@${f.file.path}`).sort(),
  files: r.files.map((f) => `${f.path}:${f.size}:${f.sha256}`).sort(), // readings interleave by chunk
  events: r.events.map((e) => `${e.name}@${e.where}`).sort(),
});

describe('every reading of a message', () => {
  for (const c of READING_CASES) {
    it(`${c.infected ? 'finds EICAR' : 'finds nothing'}: ${c.name} (any chunking)`, async () => {
      const whole = await scan([c.message]);
      const found = whole.findings.filter((f) => f.threat === 'EICAR-Test-File' && f.file.path !== 'message');
      if (c.infected) assert.ok(found.length > 0, `not found beyond the raw message: ${JSON.stringify(summary(whole))}`);
      else assert.deepEqual(whole.findings, []);
      assert.deepEqual(summary(await scan(byteByByte(c.message))), summary(whole));
      assert.deepEqual(summary(await scan(randomChunks(c.message, 7, 29))), summary(whole));
    });
  }

  it('says why a part has more readings (MIME_AMBIGUOUS names the fields)', async () => {
    const r = await scan([READING_CASES[0]!.message]);
    const e = r.events.find((x) => x.name === 'MIME_AMBIGUOUS');
    assert.ok(e);
    assert.match(e.detail!, /2 Content-Type fields/);
    assert.equal(e.where, 'msg/2');
  });

  it('a single clean reading is one walk: no extra objects, no events', async () => {
    const msg = Buffer.from('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n');
    const r = await scan([msg]);
    assert.deepEqual(r.files.map((f) => f.path), ['message', 'msg/1']);
    assert.deepEqual(r.events, []);
  });

  it('bounds the readings: a header block built to multiply them is MIME_READINGS_EXCEEDED', async () => {
    const many = Array.from({ length: 12 }, (_, i) => `boundary="b${i}"`).join('; ');
    const part = `Content-Type: multipart/mixed; ${many}\r\n\r\n--b0\r\n\r\nx\r\n--b0--\r\n`;
    let msg = `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; ${many}\r\n\r\n`;
    for (let i = 0; i < 12; i++) msg += `--b0\r\n${part}\r\n`;
    const r = await scan([Buffer.from(`${msg}--b0--\r\n`)]);
    assert.ok(r.events.some((e) => e.name === 'MIME_READINGS_EXCEEDED'));
  });

  it('boundary candidates: first, last, RFC 2231, lenient scans, Python\'s reading', () => {
    assert.deepEqual(boundaryCandidates('multipart/mixed; boundary="a"'), ['a']);
    assert.deepEqual(boundaryCandidates(`multipart/mixed; boundary="a"; boundary*=''b`), ['b', 'a', null]);
    assert.ok(boundaryCandidates('multipart/mixed boundary="a"').includes('a'));
    assert.ok(boundaryCandidates('multipart/mixed boundary="a"').includes(null), 'Python finds no boundary');
    assert.ok(boundaryCandidates('multipart/mixed; boundary="a').includes('"a'), 'Python keeps the open quote');
  });

  it('part readings: implicit digest type, plain text without MIME-Version', () => {
    const none = partReadings(parseHeaderBlock([]), { defaultType: 'message/rfc822', plainTextToo: false });
    assert.deepEqual(none.readings.map((r) => r.type), ['message/rfc822', 'text/plain']);
    const top = partReadings(parseHeaderBlock(['Content-Type: multipart/mixed; boundary=x']), { defaultType: 'text/plain', plainTextToo: true });
    assert.deepEqual(top.readings.map((r) => r.type), ['multipart/mixed', 'text/plain']);
  });
});

describe('file names in every form', () => {
  it('keeps each name a parser gives the part, for file blocking', async () => {
    const c = READING_CASES.find((x) => x.name.startsWith('file name twice'))!;
    const r = await scan([c.message]);
    const f = r.files.find((x) => x.path === 'msg/2')!;
    assert.equal(f.name, 'a.txt');
    assert.deepEqual(f.otherNames, ['e.com']);
  });
});
