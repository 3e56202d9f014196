/**
 * `smtpwall demo`: the five-minute tour. Starts a receiving mailbox and a gateway in front of
 * it on loopback, sends one clean message and one carrying the EICAR test file, and prints
 * what the client, the gateway and the receiving server each saw, then the log records.
 */

import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '../../app/gateway.ts';
import { MailboxServer, type StoredMessage } from '../../mailbox/mailbox.ts';
import { sendMessage } from '../../mailbox/smtp-client.ts';
import { EICAR } from '../../inspect/engines/signatures.ts';
import { SqliteLogStore } from '../../logs/sqlite-store.ts';
import { silentLogger } from '../../logs/process-log.ts';
import { parseConfig } from '../../policy/load-config.ts';
import { printTable } from '../table.ts';
import { command } from '../command.ts';

export const demoCommand = command({
  name: 'demo',
  usage: ['demo'],
  summary: 'a gateway, a mailbox and two messages on loopback: what each side sees',
  options: {},
  help: {},
  run: () => runDemo(),
});

async function runDemo(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-demo-'));
  const out = (s = ''): boolean => process.stdout.write(`${s}\n`);
  const stored: StoredMessage[] = [];
  const mailbox = new MailboxServer(join(dir, 'mailbox'), (m) => stored.push(m), 'mx.demo.example');
  const mx = await mailbox.listen();
  const cfg = parseConfig(
    `data-dir: ${JSON.stringify(join(dir, 'data'))}
listeners:
  - name: demo
    listen: 127.0.0.1:0
    upstream: ${mx.host}:${mx.port}
    forwarding: store-and-forward
profiles:
  antivirus:
    strict: { action: block }
rules:
  - name: scan-all
    profiles: { antivirus: strict }
`,
  );
  const gateway = new Gateway(cfg, silentLogger);
  const [gw] = await gateway.start();
  out('smtpwall demo');
  out(`  receiving server (built-in mailbox): ${mx.host}:${mx.port}, storing in ${join(dir, 'mailbox')}`);
  out(`  gateway: ${gw!.host}:${gw!.port} → ${mx.host}:${mx.port}, store-and-forward, rule scan-all, action block`);
  out();
  try {
    const messages = [
      { title: '1. a clean message', subject: 'Quarterly report', body: 'Hello,\r\n\r\nthe report is attached in spirit.\r\n', attach: null },
      { title: '2. a message carrying the EICAR test file (base64 attachment)', subject: 'Invoice', body: 'Please see the attached invoice.\r\n', attach: EICAR },
    ];
    for (const m of messages) {
      out(`== ${m.title}`);
      const before = stored.length;
      const res = await sendMessage({
        host: gw!.host,
        port: gw!.port,
        from: 'alice@sender.example',
        to: ['bob@demo.example'],
        message: buildMessage(m.subject, m.body, m.attach),
        helo: 'mta.sender.example',
      });
      out('  the sending client saw:');
      for (const line of res.transcript) out(`    ${line}`);
      const got = stored.slice(before);
      out(`  the receiving server saw: ${got.length ? got.map((s) => `a message of ${s.size} bytes, stored as ${s.file}`).join('; ') : 'no message (nothing was delivered)'}`);
      out();
    }
    const logs = new SqliteLogStore(cfg.dataDirAbs, { readonly: true });
    out('== the traffic log (smtpwall logs traffic)');
    printTable(
      ['transaction', 'from', 'to', 'size', 'subject', 'rule', 'action', 'reply'],
      logs.listTraffic(10).map((r) => [r.transactionId, r.mailFrom, r.rcptTo.join(','), String(r.size), r.subject, r.rule, r.action, r.clientReply || r.upstreamReply]),
    );
    out();
    out('== the threat log (smtpwall logs threats)');
    printTable(
      ['transaction', 'threat', 'threat-id', 'engine', 'file', 'type', 'sha256', 'action'],
      logs.listThreats(10).map((r) => [r.transactionId, r.threat, r.threatId, r.engine, `${r.filePath} ${r.fileName}`, r.detectedType, r.sha256.slice(0, 16), r.action]),
    );
    logs.close();
    out();
    out(`files of this run: ${dir} (mailbox: ${readdirSync(join(dir, 'mailbox')).filter((f) => f.endsWith('.eml')).length} message(s))`);
    return 0;
  } finally {
    await gateway.stop(1000);
    await mailbox.close();
  }
}

function buildMessage(subject: string, body: string, attachment: Buffer | null): Buffer {
  const head = `From: Alice <alice@sender.example>\r\nTo: Bob <bob@demo.example>\r\nSubject: ${subject}\r\nMessage-ID: <${Date.now()}.${subject.length}@sender.example>\r\nMIME-Version: 1.0\r\n`;
  if (!attachment) return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${body}`);
  const b = 'demo-boundary-1';
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="${b}"\r\n\r\n--${b}\r\nContent-Type: text/plain\r\n\r\n${body}--${b}\r\n` +
      `Content-Type: application/octet-stream; name="invoice.com"\r\nContent-Disposition: attachment; filename="invoice.com"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${attachment.toString('base64')}\r\n--${b}--\r\n`,
  );
}
