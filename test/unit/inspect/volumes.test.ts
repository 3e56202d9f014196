/**
 * Split archives: volumes `name.001`, `name.002`, … attached to one message are joined in order,
 * as 7-Zip joins them when the first is opened, and the whole archive is unpacked — written by
 * 7-Zip itself (`-v`, zip and 7z) and by GNU split (HJSplit's naming). Volumes with a gap are
 * left as they are; the join is an informational event, which the policy passes. Multi-volume
 * RARs (both namings, RAR 4 and 5) likewise, checked against bsdtar and The Unarchiver (unar):
 * every file either extracts is the file the inspector scanned; a volume without the rest of
 * its set is ARCHIVE_CORRUPT, never a silently short member.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildInspector } from '../../../src/app/assemble.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Policy } from '../../../src/policy/decide.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';
import { rar4StoredVolumes, rar5StoredVolumes, rar5Stored } from '../../helpers/archives.ts';
import { createHash } from 'node:crypto';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-volumes-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cfg = parseConfig(`data-dir: ${JSON.stringify(join(dir, 'data'))}\nlisteners: [{ name: t, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }]\n`);
const inspector = buildInspector(cfg, [new SignatureEngine()]);

/** A payload whose EICAR only exists once the volumes are joined (deflated, cut in the middle). */
function payload(d: string, clean = false): void {
  writeFileSync(join(d, 'filler.bin'), randomBytes(250_000)); // incompressible: several volumes
  writeFileSync(join(d, 'tool.com'), clean ? Buffer.from('harmless\n') : EICAR);
}

function message(files: ReadonlyArray<{ name: string; data: Buffer }>): Buffer {
  const parts = files.map((f) => `--b\r\nContent-Type: application/octet-stream; name="${f.name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${f.data.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`).join('');
  return Buffer.from(`Subject: volumes\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n${parts}--b--\r\n`, 'latin1');
}

function volumes(name: string, make: (d: string) => void, clean = false): Array<{ name: string; data: Buffer }> {
  const d = mkdtempSync(join(dir, 'v-'));
  payload(d, clean);
  make(d);
  return readdirSync(d).filter((f) => f.startsWith(`${name}.`) && /\.\d{3}$/.test(f)).sort().map((f) => ({ name: f, data: readFileSync(join(d, f)) }));
}

const have7z = existsSync('/usr/bin/7zz');
const sevenZipSplit = (type: string) => (d: string): void => void execFileSync('7zz', ['a', '-bd', '-y', `-t${type}`, '-v100k', join(d, `a.${type}`), 'filler.bin', 'tool.com'], { cwd: d, stdio: 'ignore' });

describe('split archives', () => {
  for (const type of ['zip', '7z']) {
    it(`${type} volumes written by 7-Zip (-v100k): joined, the file inside found`, { skip: have7z ? false : '7zz is not installed' }, async () => {
      const vols = volumes(`a.${type}`, sevenZipSplit(type));
      assert.ok(vols.length >= 3, `${vols.length} volumes`);
      const r = await inspector.scanBuffer(message([...vols].reverse()), true, 60_000); // attached in any order
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.endsWith('/tool.com') && f.file.path.includes('(joined)')), JSON.stringify(r.files.map((f) => f.path)));
      assert.ok(r.events.some((e) => e.name === 'ARCHIVE_VOLUMES_JOINED' && e.detail === `${vols.length} volumes of a.${type}`));
      assert.equal(r.events.filter((e) => e.name === 'ARCHIVE_CORRUPT').length, 0, 'the cut first volume is not unpacked alone');
    });
  }

  it('volumes cut by GNU split (HJSplit names: .001, .002, …) of a deflated zip: joined and found', async () => {
    const vols = volumes('pack.zip', (d) => {
      execFileSync('python3', ['-c', "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]+'/whole.zip','w',zipfile.ZIP_DEFLATED); z.write(sys.argv[1]+'/filler.bin','filler.bin'); z.write(sys.argv[1]+'/tool.com','tool.com'); z.close()", d]);
      execFileSync('split', ['-b', '60000', '-d', '-a', '3', '--numeric-suffixes=1', join(d, 'whole.zip'), join(d, 'pack.zip.')]);
    });
    const r = await inspector.scanBuffer(message(vols), true, 60_000);
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.includes('(joined)')), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('a gap in the numbering: not joined; clean volumes pass the policy with the informational event', { skip: have7z ? false : '7zz is not installed' }, async () => {
    const vols = volumes('a.zip', sevenZipSplit('zip'));
    const gap = await inspector.scanBuffer(message(vols.filter((v) => !v.name.endsWith('.002'))), true, 60_000);
    assert.equal(gap.events.some((e) => e.name === 'ARCHIVE_VOLUMES_JOINED'), false);
    const clean = volumes('a.zip', sevenZipSplit('zip'), true);
    const facts = { listener: 't', clientAddress: '192.0.2.1', mailFrom: 'a@b', rcptTo: ['c@d'], serverAddress: '127.0.0.1', user: null, direction: 'inbound' } as const;
    const { decision, result } = await new Policy(cfg).evaluate(facts, () => inspector.scanBuffer(message(clean), true, 60_000));
    assert.ok(result?.events.some((e) => e.name === 'ARCHIVE_VOLUMES_JOINED'));
    assert.equal(decision.action, 'allow', JSON.stringify(decision));
  });
});

describe('multi-volume RAR', { skip: existsSync('/usr/bin/bsdtar') ? false : 'bsdtar is not installed (apt-get install libarchive-tools)' }, () => {
  // EICAR straddles the cut between the first and second volume: no volume alone holds it.
  const threat = Buffer.concat([Buffer.from('x'.repeat(980)), EICAR, Buffer.from(' tail\n'.repeat(300))]);
  const clean = Buffer.from(Array.from({ length: 400 }, (_, i) => `line ${i} of a harmless file\n`).join(''));
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const sets = [
    { format: 'RAR 5', names: (n: number) => Array.from({ length: n }, (_, i) => `pack.part${i + 1}.rar`), write: rar5StoredVolumes },
    { format: 'RAR 4', names: (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 'pack.rar' : `pack.r${String(i - 1).padStart(2, '0')}`)), write: rar4StoredVolumes },
  ];
  const facts = { listener: 't', clientAddress: '192.0.2.1', mailFrom: 'a@b', rcptTo: ['c@d'], serverAddress: '127.0.0.1', user: null, direction: 'inbound' } as const;

  for (const set of sets) {
    it(`${set.format} volumes (${set.names(3).join(', ')}): joined, the file across the cut found, as bsdtar and unar extract it`, async () => {
      const vols = set.write('payload.com', threat, 3).map((data, i) => ({ name: set.names(3)[i]!, data }));
      const d = mkdtempSync(join(dir, 'rar-'));
      for (const v of vols) writeFileSync(join(d, v.name), v.data);
      // The references: bsdtar given the volumes in order on a pipe, and unar given the first.
      const bsdtar = execFileSync('/bin/sh', ['-c', `cat ${vols.map((v) => join(d, v.name)).join(' ')} | bsdtar -xOf -`]);
      assert.equal(sha(bsdtar), sha(threat));
      if (existsSync('/usr/bin/unar')) {
        execFileSync('unar', ['-q', '-o', join(d, 'out'), join(d, vols[0]!.name)], { stdio: 'ignore' });
        assert.equal(sha(readFileSync(join(d, 'out', 'payload.com'))), sha(threat));
      }
      const r = await inspector.scanBuffer(message([...vols].reverse()), true, 60_000);
      const joined = r.files.find((f) => f.path.includes('(joined)/') && f.path.endsWith('/payload.com'));
      assert.equal(joined?.sha256, sha(threat), JSON.stringify(r.files.map((f) => f.path)));
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === joined!.path));
      assert.ok(r.events.some((e) => e.name === 'ARCHIVE_VOLUMES_JOINED' && e.detail === '3 volumes of pack.rar'), JSON.stringify(r.events));
      assert.equal(r.events.filter((e) => e.name === 'ARCHIVE_CORRUPT').length, 0, JSON.stringify(r.events));
    });

    it(`${set.format}: clean volumes pass the policy; one volume alone, or the first two of three, is ARCHIVE_CORRUPT (blocked)`, async () => {
      const vols = set.write('notes.txt', clean, 3).map((data, i) => ({ name: set.names(3)[i]!, data }));
      const policy = new Policy(cfg);
      const whole = await policy.evaluate(facts, () => inspector.scanBuffer(message(vols), true, 60_000));
      assert.equal(whole.decision.action, 'allow', JSON.stringify(whole.decision));
      assert.equal(whole.result?.files.find((f) => f.path.includes('(joined)/') && f.path.endsWith('/notes.txt'))?.sha256, sha(clean));

      const second = await policy.evaluate(facts, () => inspector.scanBuffer(message([vols[1]!]), true, 60_000));
      const before = second.result?.events.find((e) => e.name === 'ARCHIVE_CORRUPT');
      assert.match(before?.detail ?? '', /without the volumes before it: notes\.txt begins in one of them/);
      assert.equal(second.decision.action, 'block', JSON.stringify(second.decision));

      const firstTwo = await policy.evaluate(facts, () => inspector.scanBuffer(message(vols.slice(0, 2)), true, 60_000));
      assert.ok(firstTwo.result?.events.some((e) => e.name === 'ARCHIVE_VOLUMES_JOINED' && e.detail === '2 volumes of pack.rar'));
      assert.match(firstTwo.result?.events.find((e) => e.name === 'ARCHIVE_CORRUPT')?.detail ?? '', /2 joined volumes .* without the volumes after it: notes\.txt continues in them/);
      assert.equal(firstTwo.decision.action, 'block');
    });
  }

  it('archives that are no volumes, named like volumes (x.rar, x.r00): each read alone, nothing hidden behind the first', async () => {
    const first = rar5Stored([{ name: 'readme.txt', data: Buffer.from('hello\n') }]);
    const second = rar5Stored([{ name: 'tool.com', data: EICAR }]);
    const r = await inspector.scanBuffer(message([{ name: 'x.rar', data: first }, { name: 'x.r00', data: second }]), true, 60_000);
    assert.equal(r.events.some((e) => e.name === 'ARCHIVE_VOLUMES_JOINED'), false);
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.endsWith('x.r00/tool.com')), JSON.stringify(r.files.map((f) => f.path)));
  });
});
