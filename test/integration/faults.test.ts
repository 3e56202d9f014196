/**
 * Faults on the gateway's own side: a log database another process holds locked, and a spool
 * that cannot be written (disk full, broken directory). Mail either flows (logging is not
 * worth losing mail over) or gets a 4xx — never a 2xx for a message that was not delivered,
 * never a crash.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

describe('faults on the gateway side', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('log database locked by another process: mail is still delivered; the gateway keeps working', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    const locker = new Database(join(gw.dataDir, 'logs.sqlite'));
    try {
      locker.exec('BEGIN EXCLUSIVE');
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write('Subject: while locked\r\n\r\nclean\r\n.\r\n');
      assert.match((await c.reply(15_000))!, /^250 /);
      assert.equal(up.messages.length, before + 1);
      locker.exec('COMMIT');
      const c2 = await RawClient.connect(gw.port);
      await c2.begin();
      c2.write('Subject: after\r\n\r\nclean\r\n.\r\n');
      assert.match((await c2.reply())!, /^250 /);
      // Buffered records are written by the retry (once a second) after the lock is gone.
      let subjects: string[] = [];
      for (let i = 0; i < 30 && !subjects.includes('after'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        const logs = gw.logs();
        subjects = logs.listTraffic(10).map((t) => t.subject);
        logs.close();
      }
      assert.ok(subjects.includes('after'), 'records are written again once the lock is gone');
      assert.ok(subjects.includes('while locked'), 'the record made while locked was kept and written later');
      assert.ok(subjects.indexOf('while locked') < subjects.indexOf('after'), 'in order');
    } finally {
      locker.close();
      await gw.stop();
    }
  });

  it('log database full (log-database.max-size), on-failure tempfail: 451 for new transactions, every 250 delivered, nothing else', async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'log-database: { on-failure: tempfail, max-size: 1 }\n' });
    try {
      const before = up.messages.length;
      const replies: string[] = [];
      // The database may take a few records into free space of its pages; then it is full.
      for (let i = 0; i < 200 && !replies.some((r) => r.startsWith('451')); i++) {
        const c = await RawClient.connect(gw.port);
        await c.reply(); // greeting
        await c.cmd('EHLO client.example.org');
        const mail = (await c.cmd('MAIL FROM:<a@example.org>'))!;
        if (mail.startsWith('451')) {
          replies.push(mail);
          c.destroy();
          break;
        }
        await c.cmd('RCPT TO:<b@example.com>');
        await c.cmd('DATA');
        c.write(`Subject: m${i} ${'x'.repeat(900)}\r\n ${'y'.repeat(900)}\r\n\r\nclean\r\n.\r\n`);
        replies.push((await c.reply())!);
        c.destroy();
      }
      assert.match(replies.at(-1)!, /^451 4\.3\.0 Logging temporarily unavailable/, JSON.stringify(replies));
      const accepted = replies.filter((r) => r.startsWith('250')).length;
      assert.ok(accepted >= 1, JSON.stringify(replies));
      assert.equal(up.messages.length - before, accepted, 'every 250 was delivered, nothing else');
      assert.ok(replies.every((r) => /^(250|451) /.test(r)));
    } finally {
      await gw.stop();
    }
  });

  it('log database locked, on-failure tempfail: 451 while records wait, mail accepted again once they are written', async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'log-database: { on-failure: tempfail }\n' });
    const locker = new Database(join(gw.dataDir, 'logs.sqlite'));
    const send = async (subject: string): Promise<string> => {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO client.example.org');
      const mail = (await c.cmd('MAIL FROM:<a@example.org>'))!;
      if (!mail.startsWith('250')) {
        c.destroy();
        return mail;
      }
      await c.cmd('RCPT TO:<b@example.com>');
      await c.cmd('DATA');
      c.write(`Subject: ${subject}\r\n\r\nclean\r\n.\r\n`);
      const r = (await c.reply(15_000))!;
      c.destroy();
      return r;
    };
    try {
      locker.exec('BEGIN EXCLUSIVE');
      const before = up.messages.length;
      assert.match(await send('while locked'), /^250 /, 'the transaction in progress completes; its record waits');
      assert.match(await send('refused'), /^451 4\.3\.0 /);
      assert.equal(up.messages.length, before + 1);
      locker.exec('COMMIT');
      let reply = '';
      for (let i = 0; i < 40 && !reply.startsWith('250'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        reply = await send('after');
      }
      assert.match(reply, /^250 /, 'accepted again once the waiting records are written');
      const logs = gw.logs();
      const subjects = logs.listTraffic(10).map((t) => t.subject);
      logs.close();
      assert.ok(subjects.includes('while locked') && subjects.includes('after'), JSON.stringify(subjects));
    } finally {
      locker.close();
      await gw.stop();
    }
  });

  // A real full disk: a 256 KiB tmpfs mounted on the spool directory (needs root and mount).
  const canMount = (() => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-mount-'));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    if (r.status === 0) spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
    return r.status === 0;
  })();

  it('spool disk full (ENOSPC on a small tmpfs): 452 4.3.1, nothing delivered, nothing left behind', { skip: canMount ? false : 'cannot mount a tmpfs here (needs root)' }, async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'limits: { spool-memory: 64kb }\n' });
    const spool = join(gw.dataDir, 'spool');
    mkdirSync(spool, { recursive: true });
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', spool]).status, 0);
    try {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write(`Subject: bigger than the disk\r\n\r\n${'line of text for the spool\r\n'.repeat(40_000)}.\r\n`);
      assert.match((await c.reply(15_000))!, /^452 4\.3\.1 Insufficient system storage/);
      assert.equal(up.messages.length, before);
      assert.deepEqual(readdirSync(spool), [], 'the partial spool file is removed');
      const c2 = await RawClient.connect(gw.port);
      await c2.begin();
      c2.write(`Subject: fits\r\n\r\n${'line of text for the spool\r\n'.repeat(4_000)}.\r\n`);
      assert.match((await c2.reply(15_000))!, /^250 /, 'a message that fits on the disk still passes');
      assert.equal(up.messages.length, before + 1);
    } finally {
      spawnSync('umount', [spool]); // before the helper removes the data directory
      await gw.stop();
    }
  });

  it('spool cannot be written (store-and-forward, beyond spool-memory): 452 4.3.1, nothing delivered', async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'limits: { spool-memory: 64kb }\n' });
    writeFileSync(join(gw.dataDir, 'spool'), 'a file where the spool directory should be');
    try {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write(`Subject: big\r\n\r\n${'line of text for the spool\r\n'.repeat(10_000)}.\r\n`);
      assert.match((await c.reply(15_000))!, /^452 4\.3\.1 Insufficient system storage/);
      assert.equal(up.messages.length, before);
      const c2 = await RawClient.connect(gw.port);
      await c2.begin();
      c2.write('Subject: small\r\n\r\nfits in memory\r\n.\r\n');
      assert.match((await c2.reply())!, /^250 /, 'small messages still pass: the gateway is fine');
    } finally {
      await gw.stop();
    }
  });
});
