/**
 * OpenPGP messages that need no key, written by gpg in the test: a literal packet
 * (`--store`), compressed (`-z 6`, ZIP, ZLIB, and BZip2 through 7-Zip), armored or binary, inline in a text body or
 * as a .gpg attachment. The file inside is taken out under its name and scanned; plain text
 * that mentions PGP is left alone.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { buildInspector } from '../../../src/app/assemble.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
const dir = mkdtempSync(join(tmpdir(), 'smtpwall-pgp-'));
const file = join(dir, 'tool.com');
writeFileSync(file, EICAR);

function gpg(args: string[]): Buffer {
  return execFileSync('gpg', ['--homedir', dir, '--batch', '--quiet', '--no-tty', '-o', '-', ...args, file]);
}

describe('OpenPGP messages without encryption', { skip: existsSync('/usr/bin/gpg') ? false : 'gpg is not installed' }, () => {
  const variants: ReadonlyArray<readonly [string, string[]]> = [
    ['literal, armored', ['--store', '-z', '0', '--armor']],
    ['compressed ZIP, armored', ['--store', '-z', '6', '--compress-algo', 'zip', '--armor']],
    ['compressed ZLIB, binary', ['--store', '-z', '6', '--compress-algo', 'zlib']],
  ];
  for (const [name, args] of variants) {
    it(`${name}: the file inside is scanned under its name`, async () => {
      const pgp = gpg(args);
      const armored = args.includes('--armor');
      const r = armored
        ? await inspector.scanBuffer(Buffer.concat([Buffer.from('Here it is:\r\n\r\n'), pgp]), false, 20_000, 'body.txt')
        : await inspector.scanBuffer(pgp, false, 20_000, 'tool.com.gpg');
      const f = r.findings.find((x) => x.threat === 'EICAR-Test-File' && x.file.path.endsWith('/pgp1'));
      assert.ok(f, JSON.stringify(r.files.map((x) => x.path)));
      assert.equal(f.file.name, 'tool.com');
    });
  }
  it('the armor line split across two chunks at any point is still found', async () => {
    const body = Buffer.concat([Buffer.from(`${'x'.repeat(1000)}\r\n`), gpg(['--store', '-z', '0', '--armor'])]);
    for (let cut = 995; cut < 1035; cut++) {
      const s = inspector.begin();
      s.write(body.subarray(0, cut));
      s.write(body.subarray(cut));
      const r = await s.end(20_000);
      assert.ok(r.findings.some((x) => x.threat === 'EICAR-Test-File' && x.file.path.endsWith('/pgp1')), `split at ${cut}`);
    }
  });

  it('compressed BZip2, binary, renamed: 7-Zip decompresses it, the packets inside are read, the file found', { skip: existsSync('/usr/bin/7zz') ? false : '7zz is not installed' }, async () => {
    const pgp = gpg(['--store', '-z', '6', '--compress-algo', 'bzip2']);
    const gateway = buildInspector(parseConfig(`data-dir: ${JSON.stringify(join(dir, 'data'))}\nlisteners: [{ name: t, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }]\n`), [new SignatureEngine()]);
    // Named like anything but a PGP file: the packets are recognised by their first bytes.
    for (const name of ['tool.com.gpg', 'attachment.bin']) {
      const r = await gateway.scanBuffer(pgp, false, 20_000, name);
      const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
      assert.equal(f?.file.name, 'tool.com', `${name}: ${JSON.stringify(r.files.map((x) => x.path))}`);
    }
  });

  it('text that only mentions PGP gives no object', async () => {
    const r = await inspector.scanBuffer(Buffer.from('We should use PGP for this. BEGIN PGP MESSAGE is how it starts.\r\n'), false, 20_000, 'note.txt');
    assert.deepEqual(r.files.map((x) => x.path), ['note.txt']);
  });
});
