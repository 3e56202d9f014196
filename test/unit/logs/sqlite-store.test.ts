import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, SqliteLogStore } from '../../../src/logs/sqlite-store.ts';
import type { ThreatRecord } from '../../../src/logs/records.ts';

const threat: ThreatRecord = {
  time: '2026-11-23T10:00:00.000Z', sessionId: 'S', transactionId: 'T', listener: 'in', client: '192.0.2.1:1', server: '192.0.2.2:25',
  mailFrom: 'a@x', rcptTo: ['b@y'], threat: 'EICAR-Test-File', threatId: '12345678', severity: 'high', engine: 'signatures',
  signature: 'body:EICAR-Test-File', fileName: 'invoice.pdf.exe', filePath: 'msg/2/a.zip/invoice.pdf.exe', declaredType: '',
  detectedType: 'exe', fileFlags: ['double-extension'], sha256: 'ab', size: 68, rule: 'r', profile: 'p', action: 'block', deciding: true,
  direction: 'client-to-server',
};

describe('SQLite log store', () => {
  it('upgrades a version-1 database in place, keeping its rows (file_flags added)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-logs-'));
    const v1 = new Database(join(dir, 'logs.sqlite'));
    v1.exec(MIGRATIONS[0]!);
    v1.pragma('user_version = 1');
    const { fileFlags: _, ...old } = threat;
    v1.prepare(`INSERT INTO threats (time, session_id, transaction_id, listener, client, server, mail_from, rcpt_to, threat, threat_id, severity,
      engine, signature, file_name, file_path, declared_type, detected_type, sha256, size, rule, profile, action, deciding, direction)
      VALUES (@time, @sessionId, @transactionId, @listener, @client, @server, @mailFrom, @rcptTo, @threat, @threatId, @severity, @engine,
      @signature, @fileName, @filePath, @declaredType, @detectedType, @sha256, @size, @rule, @profile, @action, 1, @direction)`)
      .run({ ...old, rcptTo: '["b@y"]', deciding: undefined });
    v1.close();
    const store = new SqliteLogStore(dir);
    store.addThreat(threat);
    const rows = store.listThreats(10);
    store.close();
    assert.deepEqual(rows.map((r) => r.fileFlags), [[], ['double-extension']]);
    assert.equal(rows[1]!.filePath, 'msg/2/a.zip/invoice.pdf.exe');
    const db = new Database(join(dir, 'logs.sqlite'), { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    db.close();
  });
});
