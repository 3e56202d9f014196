/**
 * Every container says what opened it (FileInfo.openedBy, shown by `smtpwall scan -v` and in
 * `--json`): a built-in reader, 7-Zip, bsdtar or bsdcat — or "recognised only" when nothing
 * here could (an event then says why), and "+ zip reading" when a zip closing it was read too.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildInspector } from '../../../src/app/assemble.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';
import { hasCommand } from '../../helpers/tools.ts';
import { rar5Stored, tar, zip } from '../../helpers/archives.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-openedby-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const gateway = buildInspector(parseConfig(`data-dir: ${JSON.stringify(join(dir, 'data'))}\nlisteners: [{ name: t, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }]\n`), [new SignatureEngine()]);
const have = hasCommand;
const openedBy = async (inspector: Inspector, bytes: Buffer, name: string): Promise<string | undefined> =>
  (await inspector.scanBuffer(bytes, false, 30_000, name)).files.find((f) => f.path === name)?.openedBy;

describe('what opened each container', () => {
  it('a zip and a tar: smtpwall; a tar with a zip appended: smtpwall + zip reading', async () => {
    assert.equal(await openedBy(gateway, zip([{ name: 'a.txt', data: Buffer.from('a') }]), 'a.zip'), 'smtpwall');
    const t = tar([{ name: 'a.txt', data: Buffer.from('a') }]);
    assert.equal(await openedBy(gateway, t, 'a.tar'), 'smtpwall');
    assert.equal(await openedBy(gateway, Buffer.concat([t, zip([{ name: 'b.com', data: EICAR }])]), 'b.tar'), 'smtpwall + zip reading');
  });

  it('a 7z: 7-Zip (7zz)', { skip: have('7zz') ? false : '7zz is not installed' }, async () => {
    writeFileSync(join(dir, 'e.com'), EICAR);
    execFileSync('7zz', ['a', '-bd', '-y', join(dir, 'e.7z'), 'e.com'], { cwd: dir, stdio: 'ignore' });
    assert.equal(await openedBy(gateway, readFileSync(join(dir, 'e.7z')), 'e.7z'), '7-Zip (7zz)');
  });

  it('a RAR: bsdtar (libarchive); without bsdtar: recognised only', { skip: have('bsdtar') ? false : 'bsdtar is not installed' }, async () => {
    const rar = rar5Stored([{ name: 'e.com', data: EICAR }]);
    assert.equal(await openedBy(gateway, rar, 'e.rar'), 'bsdtar (libarchive)');
    assert.equal(await openedBy(new Inspector({ engines: [new SignatureEngine()] }), rar, 'e.rar'), 'recognised only');
  });

  it('an lz4 stream: bsdcat (libarchive)', { skip: have('lz4') && have('bsdcat') ? false : 'lz4 or bsdcat is not installed' }, async () => {
    const lz = execFileSync('lz4', ['-q', '-c'], { input: EICAR });
    assert.equal(await openedBy(gateway, lz, 'e.lz4'), 'bsdcat (libarchive)');
  });

  it('smtpwall scan -v says it', () => {
    const file = join(dir, 'shown.zip');
    writeFileSync(file, zip([{ name: 'in.txt', data: Buffer.from('hello') }]));
    const out = execFileSync(process.execPath, [join(import.meta.dirname, '../../../bin/smtpwall.js'), 'scan', '-v', file], { encoding: 'utf8' });
    assert.match(out, /shown\.zip: zip, opened by smtpwall, \d+ bytes/);
  });
});
