/**
 * ar archives and Debian packages, read natively: every member as bsdtar and `ar x` give it —
 * a .deb's control.tar with its maintainer scripts too, which 7-Zip does not show (it opens a
 * .deb as its data.tar). Written by binutils' ar (GNU long names) and dpkg-deb.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildInspector } from '../../../src/app/assemble.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';
import { hasCommand } from '../../helpers/tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-ar-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const inspector = buildInspector(parseConfig(`data-dir: ${JSON.stringify(join(dir, 'data'))}\nlisteners: [{ name: t, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }]\n`), [new SignatureEngine()]);
const have = hasCommand;

describe('ar and .deb, natively', () => {
  it('a .deb whose postinst carries the payload: found in control.tar (7-Zip would show data.tar only)', { skip: have('dpkg-deb') && have('7zz') ? false : 'dpkg-deb or 7zz is not installed' }, async () => {
    const root = join(dir, 'pkg');
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    mkdirSync(join(root, 'usr/share/doc/x'), { recursive: true });
    writeFileSync(join(root, 'DEBIAN/control'), 'Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@x>\nDescription: t\n');
    writeFileSync(join(root, 'DEBIAN/postinst'), `#!/bin/sh\necho '${EICAR.toString('latin1')}' > /tmp/x\n`);
    chmodSync(join(root, 'DEBIAN/postinst'), 0o755);
    writeFileSync(join(root, 'usr/share/doc/x/README'), 'harmless\n');
    execFileSync('dpkg-deb', ['-Zxz', '--root-owner-group', '-b', root, join(dir, 'x.deb')], { stdio: 'ignore' });
    const r = await inspector.scanBuffer(readFileSync(join(dir, 'x.deb')), false, 30_000, 'x.deb');
    const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
    assert.match(f?.file.path ?? '', /^x\.deb\/control\.tar\.xz\/control\.tar\/.*postinst$/, JSON.stringify(r.files.map((x) => x.path)));
    assert.ok(r.files.some((x) => x.path === 'x.deb/debian-binary'));
    assert.equal(r.files.find((x) => x.path === 'x.deb')?.openedBy, 'smtpwall');
  });

  it('GNU ar with long member names (the // table), as binutils writes it', { skip: have('ar') ? false : 'binutils is not installed' }, async () => {
    const long = 'a-member-name-longer-than-sixteen-bytes.com';
    writeFileSync(join(dir, long), EICAR);
    writeFileSync(join(dir, 'short.txt'), 'hello\n');
    execFileSync('ar', ['rc', join(dir, 'l.a'), long, 'short.txt'], { cwd: dir });
    const r = await inspector.scanBuffer(readFileSync(join(dir, 'l.a')), false, 30_000, 'l.a');
    assert.deepEqual(r.files.map((x) => x.path).sort(), ['l.a', `l.a/${long}`, 'l.a/short.txt']);
    assert.ok(r.findings.some((x) => x.file.path === `l.a/${long}`));
  });

  it('a damaged header or a member past the end is ARCHIVE_CORRUPT, never a crash', async () => {
    const bad = Buffer.concat([Buffer.from('!<arch>\n'), Buffer.from('name/           0           0     0     644     99999999  `\n'), Buffer.from('short')]);
    const r = await inspector.scanBuffer(bad, false, 30_000, 'bad.a');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT'), JSON.stringify(r.events));
    const garbled = Buffer.concat([Buffer.from('!<arch>\n'), Buffer.alloc(70, 0x41)]);
    assert.ok((await inspector.scanBuffer(garbled, false, 30_000, 'g.a')).events.some((e) => e.name === 'ARCHIVE_CORRUPT'));
  });
});
