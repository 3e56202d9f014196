/**
 * HTML smuggling decoded statically: a data: URI in a link, a base64 or hex string that script
 * turns into a Blob, each an object of its own, named by its download attribute and scanned;
 * an executable, archive or image among them raises HTML_SMUGGLING. Clean look-alikes stay
 * clean (a newsletter with data: images, an SVG icon, prose with base64 in quotes), and crafted
 * input that could make the extractor slow (an unterminated 8 MB string, 100,000 data: URIs,
 * 200,000 joined literals) is
 * bounded. Generous wall-clock bounds only catch a hang; they assert no speed.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { zip } from '../../helpers/archives.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
const scan = (html: string) => inspector.scanBuffer(Buffer.from(html, 'latin1'), false, 60_000, 'page.html');
const PE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(300, 0x90)]);

describe('HTML smuggling', () => {
  it('a data: URI in a link: decoded, named by its download attribute, scanned', async () => {
    const r = await scan(`<html><body><a href="data:application/octet-stream;base64,${EICAR.toString('base64')}" download="readme.txt">open</a></body></html>`);
    const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
    assert.equal(f?.file.path, 'page.html/data1');
    assert.equal(f?.file.name, 'readme.txt');
    assert.equal(f?.file.encoding, 'data-uri');
  });

  it('a percent-encoded data: URI and one in CSS url() are decoded too', async () => {
    const pct = [...EICAR].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const r = await scan(`<html><style>.x{background:url(data:application/x-msdownload;base64,${EICAR.toString('base64')})}</style><a href="data:text/plain,${pct}">x</a></html>`);
    assert.deepEqual(r.findings.filter((x) => x.threat === 'EICAR-Test-File').map((x) => x.file.path).sort(), ['page.html/data1', 'page.html/data2']);
  });

  it('a base64 string script turns into a Blob: the executable is found, HTML_SMUGGLING, named by .download', async () => {
    const r = await scan(`<!doctype html><script>const d = "${PE.toString('base64')}";
      const b = new Blob([Uint8Array.from(atob(d), c => c.charCodeAt(0))]); const a = document.createElement('a');
      a.href = URL.createObjectURL(b); a.download = "invoice.exe"; a.click();</script>`);
    const f = r.files.find((x) => x.path === 'page.html/b64-1');
    assert.equal(f?.detectedType, 'exe');
    assert.equal(f?.name, 'invoice.exe');
    assert.ok(r.events.some((e) => e.name === 'HTML_SMUGGLING' && e.where === 'page.html/b64-1'), JSON.stringify(r.events));
  });

  it('a page behind a kilobyte of prose or junk: read when its name or type says page, as a browser renders it', async () => {
    const junk = `${'Dear customer, your invoice is attached. '.repeat(40)}\r\n`;
    const page = `${junk}<script>const d = "${PE.toString('base64')}"; const a = document.createElement('a'); a.download = "invoice.exe"; a.click();</script>`;
    for (const [name, type] of [['page.html', null], ['page.HTA.', null], ['report', 'text/html'], ['icon.svg', null]] as const) {
      const s = inspector.begin();
      s.write(Buffer.from(`Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: ${type ?? 'application/octet-stream'}; name="${name}"\r\n\r\n${page}`, 'latin1'));
      const r = await s.end(60_000);
      assert.ok(r.events.some((e) => e.name === 'HTML_SMUGGLING' && e.where === 'msg/b64-1'), `${name} ${type}: ${JSON.stringify(r.events)}`);
    }
    // The same bytes in a part that is no page by name or type, whose first kilobyte is prose:
    // a text a browser would not run is not held.
    const s = inspector.begin();
    s.write(Buffer.from(`Subject: x\r\nContent-Type: text/plain; name="notes.txt"\r\n\r\n${page}`, 'latin1'));
    assert.ok(!(await s.end(60_000)).events.some((e) => e.name === 'HTML_SMUGGLING'));
  });

  it('a data: URI spelled with character references, or broken across lines, is the URI the browser follows', async () => {
    const b64 = EICAR.toString('base64');
    const pe64 = PE.toString('base64');
    const pages = [
      // `&#100;ata:` and `data&colon;`: the attribute value is decoded before the URL is parsed.
      `<html><a href="&#100;ata:application/octet-stream;base64,${b64}" download="a.com">x</a></html>`,
      `<html><a href="data&colon;application/octet-stream;base64,${b64}">x</a></html>`,
      `<html><a href="&#x64;&#x61;&#x74;&#x61;&#x3a;application/octet-stream;base64,${b64.replace(/\+/g, '&#43;')}">x</a></html>`,
      // Line breaks and spaces inside a quoted base64 payload: the URL parser drops them.
      `<html><a href="data:application/octet-stream;base64,${b64.replace(/(.{16})/g, '$1\r\n  ')}">x</a></html>`,
    ];
    for (const html of pages) {
      const r = await scan(html);
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'page.html/data1'), `${html.slice(0, 60)}: ${JSON.stringify(r.files.map((f) => f.path))}`);
    }
    const r = await scan(`<html><a href='data:application/x-msdownload;base64,${pe64.replace(/(.{10})/g, '$1\n')}' download="run.exe">x</a></html>`);
    assert.ok(r.events.some((e) => e.name === 'HTML_SMUGGLING'), JSON.stringify(r.events));
    assert.equal(r.files.find((f) => f.path === 'page.html/data1')?.size, PE.length, 'the whole program, not its first line');
  });

  it('a payload cut into short strings that script joins is one file', async () => {
    const pieces = (b: Buffer, n: number) => (b.toString('base64').match(new RegExp(`.{1,${n}}`, 'g')) ?? []).map((p) => `"${p}"`);
    const plus = await scan(`<html><script>var d = ${pieces(PE, 40).join(' +\n      ')};\nvar a = document.createElement('a'); a.download = "setup.exe";</script></html>`);
    assert.ok(plus.events.some((e) => e.name === 'HTML_SMUGGLING' && /joined from \d+ pieces/.test(e.detail ?? '')), JSON.stringify(plus.events));
    assert.equal(plus.files.find((f) => f.encoding === 'script-base64')?.size, PE.length);
    const eicar = Buffer.concat([EICAR, Buffer.alloc(200, 0x20)]);
    const joined = await scan(`<html><script>const parts = [${pieces(eicar, 24).join(', ')}]; const b = new Blob([atob(parts.join(''))]);</script></html>`);
    assert.ok(joined.findings.some((f) => f.threat === 'EICAR-Test-File'), JSON.stringify(joined.files.map((f) => f.path)));
    const uri = await scan(`<html><script>location.href = "data:application/octet-stream;base64," + ${pieces(eicar, 30).join(' + ')};</script></html>`);
    assert.ok(uri.findings.some((f) => f.threat === 'EICAR-Test-File'), 'a data: URI built from pieces');
    // A list of words is not a payload.
    const words = await scan(`<html><script>var w = [${Array.from({ length: 80 }, (_, i) => `"word${'abcdefgh'[i % 8]}"`).join(', ')}];</script></html>`);
    assert.deepEqual(words.files.map((f) => f.path), ['page.html']);
  });

  it('bytes written as escapes or as a list of numbers are decoded too', async () => {
    const esc = (b: Buffer, f: (x: number) => string) => [...b].map(f).join('');
    const hx = (x: number) => x.toString(16).padStart(2, '0');
    const cases = [
      `<html><script>var s = "${esc(EICAR, (x) => `\\x${hx(x)}`)}"; save(s);</script></html>`,
      `<html><script>var s = unescape("${esc(EICAR, (x) => `%${hx(x)}`)}");</script></html>`,
      `<html><script>var s = "${esc(EICAR, (x) => `\\u00${hx(x)}`)}";</script></html>`,
      `<html><script>var b = new Uint8Array([${[...EICAR].join(', ')}]);</script></html>`,
      `<html><script>var s = String.fromCharCode(${[...EICAR].map((x) => `0x${hx(x)}`).join(',')});</script></html>`,
    ];
    for (const html of cases) {
      const r = await scan(html);
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File'), `${html.slice(0, 50)}: ${JSON.stringify(r.files.map((f) => [f.path, f.size]))}`);
    }
    const pe = await scan(`<html><script>var b = new Uint8Array([${[...PE].join(',')}]); var a = document.createElement('a'); a.download = 'x.exe';</script></html>`);
    assert.ok(pe.events.some((e) => e.name === 'HTML_SMUGGLING' && /list of byte values/.test(e.detail ?? '')), JSON.stringify(pe.events));
    // Ordinary script numbers and short escapes are no file.
    const clean = await scan(`<html><script>var m = [1, 2, 3, 400, 5]; var t = "caf\\xe9 \\u00e9t\\u00e9"; var widths = [${Array(100).fill('1024').join(', ')}];</script></html>`);
    assert.deepEqual(clean.files.map((f) => f.path), ['page.html']);
  });

  it('a hex string holding a zip: HTML_SMUGGLING, and the zip is unpacked', async () => {
    const z = zip([{ name: 'eicar.com', data: EICAR }]);
    const r = await scan(`<html><script>var h = '${z.toString('hex')}'; save(h);</script></html>`);
    assert.ok(r.events.some((e) => e.name === 'HTML_SMUGGLING' && /zip/.test(e.detail ?? '')));
    assert.ok(r.findings.some((x) => x.threat === 'EICAR-Test-File' && x.file.path.startsWith('page.html/hex1/') && x.file.path.endsWith('/eicar.com')));
  });

  it('an SVG with script carrying a payload is read like a page', async () => {
    const r = await scan(`<svg xmlns="http://www.w3.org/2000/svg"><script>var p = "${PE.toString('base64')}";</script></svg>`);
    assert.ok(r.events.some((e) => e.name === 'HTML_SMUGGLING'));
  });
});

describe('clean look-alikes stay clean', () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  it('a newsletter with data: images: the images are scanned, no event', async () => {
    const r = await scan(`<!doctype html><html><body><img src="data:image/png;base64,${png}"><p>News</p><img src="data:image/png;base64,${png}"></body></html>`);
    assert.deepEqual(r.events, []);
    assert.deepEqual(r.findings, []);
    assert.deepEqual(r.files.filter((f) => f.path.startsWith('page.html/')).map((f) => f.detectedType), ['png', 'png']);
  });
  it('an SVG icon, and prose quoting a long base64 string: no event', async () => {
    const r1 = await scan(`<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,${png}"/></svg>`);
    assert.deepEqual(r1.events, []);
    const text = Buffer.from('Dear colleague, the key is "' + 'QUJD'.repeat(100) + '". Regards\r\n', 'latin1');
    const r2 = await inspector.scanBuffer(text, false, 60_000, 'note.txt');
    assert.deepEqual(r2.files.map((f) => f.path), ['note.txt'], 'prose is not markup: nothing held, nothing decoded');
  });
});

describe('crafted input is bounded', () => {
  it('an unterminated 8 MB string and 100,000 data: prefixes', async () => {
    const t0 = Date.now();
    const r = await scan(`<html><script>var x = "${'A'.repeat(8 * 1024 * 1024)}</script>${'<a href="data:,">'.repeat(100_000)}</html>`);
    assert.ok(Date.now() - t0 < 30_000, `${Date.now() - t0} ms`);
    assert.ok(r.files.length <= 1 + 64, `${r.files.length} objects: at most 64 payloads per object`);
    // 200,000 short literals joined by script, and 8,000 unterminated runs: read once each.
    const t1 = Date.now();
    const joined = await scan(`<html><script>var x = ${Array(200_000).fill('"Ab"').join(' + ')}; ${'"QUJD'.repeat(2).padEnd(1000, 'x').repeat(8000)}</script></html>`);
    assert.ok(Date.now() - t1 < 30_000, `${Date.now() - t1} ms`);
    assert.ok(joined.files.some((f) => f.encoding === 'script-base64'), 'the joined string is one payload');
  });
});
