/**
 * The 7-Zip process seen from the gateway, with stand-ins for `7zz` (shell scripts) that
 * misbehave the ways a crafted archive could make the real one misbehave: output beyond what
 * the listing accounts for (still scanned, reported), a hang (killed at the deadline,
 * reported), a crash mid-output (what arrived is scanned, reported).
 */

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SevenZipTool, sevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { sevenZip } from '../../helpers/archives.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-fake7z-'));

/** A fake 7zz: `listing` for `l`, then `extract` (shell) for `x`, exit 0 for `t`. */
function fake(name: string, listing: string, extract: string): SevenZipTool {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\ncase "$3" in\n  l) printf '${listing}' ;;\n  x) ${extract} ;;\n  *) exit 0 ;;\nesac\n`);
  chmodSync(path, 0o755);
  return new SevenZipTool(path, 1500, dir);
}

async function scan(tool: SevenZipTool) {
  const inspector = new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(tool) } });
  return inspector.scanBuffer(sevenZip(false), false, 20_000, 'x.7z');
}

describe('7-Zip as a separate process, misbehaving', () => {
  it('output beyond the listing: scanned as an "(unlisted)" member and reported', async () => {
    const r = await scan(fake('extra', 'Path = a.txt\\nSize = 3\\n\\n', `printf 'abc'; printf '%s' '${EICAR.toString('latin1')}'`));
    assert.deepEqual(r.files.map((f) => `${f.path}:${f.size}`), ['x.7z:' + sevenZip(false).length, 'x.7z/a.txt:3', `x.7z/(unlisted):${EICAR.length}`]);
    assert.deepEqual(r.findings.map((f) => f.file.path), ['x.7z/(unlisted)']);
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /more data than the listing/.test(e.detail ?? '')));
  });

  it('a hang: killed at the deadline, reported', async () => {
    const t0 = Date.now();
    const r = await scan(fake('hang', 'Path = a.txt\\nSize = 3\\n\\n', 'printf ab; exec sleep 30'));
    assert.ok(Date.now() - t0 < 10_000);
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /did not finish within 1500 ms/.test(e.detail ?? '')), JSON.stringify(r.events));
    assert.equal(r.files.find((f) => f.path === 'x.7z/a.txt')?.size, 2, 'what arrived is scanned');
  });

  it('a crash mid-output: what arrived is scanned, the error reported', async () => {
    const r = await scan(fake('crash', 'Path = a.txt\\nSize = 10\\n\\nPath = b.txt\\nSize = 5\\n\\n', 'printf 0123; exit 2'));
    assert.equal(r.files.find((f) => f.path === 'x.7z/a.txt')?.size, 4);
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /exit 2/.test(e.detail ?? '')), JSON.stringify(r.events));
  });
});

describe('7-Zip cannot list the archive', () => {
  it('damage is reported as corrupt, not as encryption; a wrong-password listing is encryption', async () => {
    const damaged = await scan(fake('damaged', '', 'exit 2'));
    // The stand-in's "l" prints nothing and succeeds: no members. A failing listing:
    const path = join(dir, 'broken');
    writeFileSync(path, '#!/bin/sh\necho "ERROR: archive.7z : Can not open the file as archive" >&2\nexit 2\n');
    chmodSync(path, 0o755);
    const broken = await scan(new SevenZipTool(path, 1500, dir));
    assert.ok(broken.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /cannot list it: ERROR/.test(e.detail ?? '')), JSON.stringify(broken.events));
    assert.notEqual(broken.files[0]!.detectedType, 'encrypted-7z');
    const locked = join(dir, 'locked');
    writeFileSync(locked, '#!/bin/sh\necho "ERROR: Can not open encrypted archive. Wrong password?" >&2\nexit 2\n');
    chmodSync(locked, 0o755);
    const enc = await scan(new SevenZipTool(locked, 1500, dir));
    assert.ok(enc.events.some((e) => e.name === 'ARCHIVE_ENCRYPTED'), JSON.stringify(enc.events));
    assert.equal(enc.files[0]!.detectedType, 'encrypted-7z');
    assert.deepEqual(damaged.findings, []);
  });
});
