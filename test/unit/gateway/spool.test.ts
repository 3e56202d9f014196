import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Spool } from '../../../src/gateway/spool.ts';

const dir = (): string => mkdtempSync(join(tmpdir(), 'smtpwall-spool-'));

async function read(s: Spool): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of s.read()) out.push(c);
  return out;
}

test('a chunk that is its own buffer (a socket read) is kept as it is; a small piece of a large one is copied', async () => {
  const d = dir();
  try {
    const s = new Spool(d, 1 << 20);
    const whole = Buffer.alloc(14, 'a whole read\r\n'); // its own ArrayBuffer, as a socket read is
    const big = Buffer.alloc(64 * 1024, 0x41);
    const piece = big.subarray(100, 120);
    await s.write(whole);
    await s.write(piece);
    const got = await read(s);
    assert.equal(got[0], whole);
    assert.notEqual(got[1]!.buffer, big.buffer, 'a view would keep the 64 KiB read alive');
    assert.deepEqual(got[1], piece);
    assert.equal(s.onDisk, false);
    await s.dispose();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a kept view counts its whole buffer toward spool-memory: past it the spool goes to disk, bytes in order', async () => {
  const d = dir();
  try {
    const s = new Spool(d, 1000);
    // 600 bytes of a 1,000-byte buffer: kept as a view, counted as 1,000.
    const first = Buffer.alloc(1000, 0x61).subarray(0, 600);
    await s.write(first);
    assert.equal(s.onDisk, false);
    await s.write(Buffer.from('b'.repeat(10)));
    assert.equal(s.onDisk, true);
    assert.equal(Buffer.concat(await read(s)).toString(), 'a'.repeat(600) + 'b'.repeat(10));
    await s.dispose();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('on disk: thousands of small chunks (more than one writev takes) and pieces of a reused buffer come back in order, byte for byte', async () => {
  const d = dir();
  try {
    const s = new Spool(d, 4096);
    const want: Buffer[] = [];
    const scratch = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 6000; i++) {
      // Every other chunk is a small piece of one buffer the caller then overwrites: the spool
      // must have copied it, or the later bytes would show through.
      const chunk = i % 2 === 0 ? Buffer.from(`line ${i} ${'x'.repeat(i % 50)}\r\n`) : scratch.fill(65 + (i % 26), 0, 40).subarray(0, 40);
      want.push(Buffer.from(chunk));
      await s.write(chunk);
    }
    assert.equal(s.onDisk, true);
    assert.ok(Buffer.concat(await read(s)).equals(Buffer.concat(want)));
    await s.dispose();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
