/**
 * The firewall-style policy as a pure function: security rules (every match condition),
 * profile groups, the default rule, threat exceptions, file blocking and data filtering, and
 * action precedence — table-driven, since a case costs a line.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DlpEngine, ibanValid, luhnValid } from '../../../src/inspect/engines/dlp.ts';
import { threatIdFor } from '../../../src/inspect/engines/engine.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import type { FileInfo, Finding } from '../../../src/inspect/types.ts';
import { ACTIONS, type Action, severityOf } from '../../../src/policy/actions.ts';
import { Policy } from '../../../src/policy/decide.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';
import type { TransactionFacts } from '../../../src/policy/rules.ts';
import { zip } from '../../helpers/archives.ts';

const LISTENERS = `listeners:
  - { name: in, listen: "127.0.0.1:2525", upstream: "10.1.1.1:25", direction: inbound }
  - { name: out, listen: "127.0.0.1:2526", upstream: "10.2.2.2:25", direction: outbound }
`;

const facts = (over: Partial<TransactionFacts> = {}): TransactionFacts => ({
  listener: 'in', clientAddress: '203.0.113.5', mailFrom: 'x@outside.example', rcptTo: ['u@corp.example'],
  serverAddress: '10.1.1.1', user: null, direction: 'inbound', ...over,
});

const file = (over: Partial<FileInfo> = {}): FileInfo => ({
  path: 'msg/2', name: 'a.bin', declaredType: null, detectedType: 'binary', flags: [], depth: 0, layers: 1, size: 10, sha256: 's', md5: 'm', encoding: 'base64', ...over,
});

const EICAR_FINDING: Finding = {
  engine: 'signatures', threat: 'EICAR-Test-File', threatId: threatIdFor('signatures', 'EICAR-Test-File'), signature: 'body:EICAR-Test-File', severity: 'high', file: file(),
};

describe('security rules: every match condition', () => {
  const policy = new Policy(parseConfig(`${LISTENERS}
profiles:
  antivirus:
    a: {}
    b: {}
profile-groups:
  lab-group: { antivirus: b }
default-rule: { antivirus: a }
rules:
  - { name: by-server, match: { server: ["10.2.0.0/16", "!10.2.9.9"] }, profiles: { antivirus: b } }
  - { name: by-user, match: { user: ["alice@corp.example"] }, profiles: { antivirus: b } }
  - { name: no-user-outbound, match: { user: ["<none>"], direction: [outbound] }, profiles: { antivirus: b } }
  - { name: by-regex, match: { from: ["/^billing[0-9]+@/"] }, profiles: { group: lab-group } }
  - { name: by-direction, match: { direction: [internal] }, profiles: { antivirus: b } }
`));
  const table: ReadonlyArray<readonly [string, Partial<TransactionFacts>, string, string]> = [
    ['nothing matches → the configured default rule', {}, 'default', 'a'],
    ['server CIDR', { serverAddress: '10.2.3.4' }, 'by-server', 'b'],
    ['server CIDR, negated address', { serverAddress: '10.2.9.9', direction: 'outbound', user: 'bob@corp.example' }, 'default', 'a'],
    ['authenticated user', { user: 'Alice@corp.example' }, 'by-user', 'b'],
    ['no authenticated user, outbound', { direction: 'outbound', serverAddress: '192.0.2.1' }, 'no-user-outbound', 'b'],
    ['an authenticated user is not <none>', { direction: 'outbound', serverAddress: '192.0.2.1', user: 'bob@corp.example' }, 'default', 'a'],
    ['sender regex, profile group', { mailFrom: 'billing42@vendor.example' }, 'by-regex', 'b'],
    ['sender regex does not match', { mailFrom: 'billing@vendor.example' }, 'default', 'a'],
    ['direction label', { direction: 'internal' }, 'by-direction', 'b'],
  ];
  for (const [name, over, rule, profile] of table) {
    it(`${name} → ${rule}`, () => {
      const r = policy.ruleFor(facts(over));
      assert.equal(r.rule, rule);
      assert.equal(r.profileName, profile);
    });
  }
  it('refuses references to profiles and groups that do not exist, and bad regexes', () => {
    assert.throws(() => parseConfig(`${LISTENERS}rules:\n  - { name: r, profiles: { file-blocking: nope } }\n`), /rules\[0\]\.profiles\.file-blocking: no file-blocking profile named "nope"/);
    assert.throws(() => parseConfig(`${LISTENERS}rules:\n  - { name: r, profiles: { group: g } }\n`), /no profile group named "g"/);
    assert.throws(() => parseConfig(`${LISTENERS}rules:\n  - { name: r, match: { from: ["/([/"] } }\n`), /not a valid \/regular expression\//);
  });
});

describe('antivirus profile: default action and threat exceptions', () => {
  const id = EICAR_FINDING.threatId;
  const policy = new Policy(parseConfig(`${LISTENERS}
profiles:
  antivirus:
    av:
      exceptions:
        - { threat-id: "${id}", action: allow, from: ["@trusted.example"] }
        - { threat-id: "${id}", action: alert, to: ["lab@corp.example"] }
rules:
  - { name: all, profiles: { antivirus: av } }
`));
  const table: ReadonlyArray<readonly [string, Partial<TransactionFacts>, Action, RegExp]> = [
    ['action: default resolves to block', {}, 'block', /^signatures found EICAR-Test-File in msg\/2 \(a\.bin\)$/],
    ['exception limited to a sender', { mailFrom: 'qa@trusted.example' }, 'allow', /threat exception \d{8} → allow/],
    ['exception limited to a recipient', { rcptTo: ['x@corp.example', 'lab@corp.example'] }, 'alert', /→ alert/],
  ];
  for (const [name, over, action, reason] of table) {
    it(name, () => {
      const d = policy.decide(facts(over), { ok: true, findings: [EICAR_FINDING], events: [] });
      assert.equal(d.action, action);
      assert.match(d.reason, reason);
      assert.equal(d.deciding, EICAR_FINDING);
    });
  }
});

describe('file blocking', () => {
  const policy = new Policy(parseConfig(`${LISTENERS}
profiles:
  file-blocking:
    fb:
      multi-encoding-threshold: 2
      rules:
        - { name: exes, types: [exe, dll, msi], action: block }
        - { name: scripts-alert, types: [js, vbs], action: alert }
        - { name: scripts-continue, types: [vbs], action: continue }
        - { name: by-ext, extensions: [scr, .iso], action: block }
        - { name: crypto, types: [encrypted-zip, unscannable], action: block }
        - { name: tricks, types: [double-extension, type-mismatch, multi-encoding], action: alert }
        - { name: downloads-only, types: [pdf], direction: download, action: block }
rules:
  - { name: all, profiles: { file-blocking: fb } }
`));
  const decide = (files: FileInfo[], events: { name: 'ARCHIVE_UNSUPPORTED'; where: string }[] = []) =>
    policy.decide(facts(), { ok: true, findings: [], events, files });
  const table: ReadonlyArray<readonly [string, FileInfo, Action, RegExp | null]> = [
    ['an executable by content', file({ detectedType: 'exe', name: 'invoice.pdf' }), 'block', /file blocking fb\/exes: type exe in msg\/2 \(invoice\.pdf\)/],
    ['inside an archive, with its path', file({ path: 'msg/2/a.zip/x.dll', name: 'x.dll', detectedType: 'dll', depth: 1 }), 'block', /type dll in msg\/2\/a\.zip\/x\.dll$/],
    ['alert only', file({ detectedType: 'js' }), 'alert', /scripts-alert/],
    ['continue is block on SMTP, and beats alert', file({ detectedType: 'vbs' }), 'block', /continue: no user to ask on SMTP, treated as block/],
    ['by extension, with or without the dot', file({ name: 'disk.ISO', detectedType: 'binary' }), 'block', /extension \.iso/],
    ['encrypted zip', file({ detectedType: 'encrypted-zip' }), 'block', /type encrypted-zip/],
    ['double extension flag', file({ flags: ['double-extension'], detectedType: 'text', name: 'a.pdf.txt' }), 'alert', /type double-extension/],
    ['multi-encoding above the threshold', file({ layers: 3, detectedType: 'text' }), 'alert', /type multi-encoding/],
    ['multi-encoding at the threshold is fine', file({ layers: 2, detectedType: 'text' }), 'allow', null],
    ['download-only rules never apply to SMTP', file({ detectedType: 'pdf' }), 'allow', null],
    ['the raw message is not a file', file({ path: 'message', detectedType: 'exe' }), 'allow', null],
  ];
  for (const [name, f, action, reason] of table) {
    it(name, () => {
      const d = decide([f]);
      assert.equal(d.action, action);
      if (reason) assert.match(d.reason, reason);
      if (action !== 'allow') assert.equal(d.deciding?.engine, 'file-blocking');
    });
  }
  it('unscannable: a rar the inspector could not open', () => {
    const d = decide([file({ path: 'msg/2', name: 'a.rar', detectedType: 'rar' })], [{ name: 'ARCHIVE_UNSUPPORTED', where: 'msg/2/a.rar' }]);
    assert.ok(d.verdicts.some((v) => v.source === 'file-blocking' && /type unscannable/.test(v.reason)));
  });
  it('through real archives: an exe two zips deep is found and named', async () => {
    const pe = Buffer.alloc(512);
    pe.write('MZ');
    const inspector = new Inspector({ engines: [new SignatureEngine()] });
    const r = await inspector.scanBuffer(zip([{ name: 'inner.zip', data: zip([{ name: 'setup.exe', data: pe }]) }]), false, 5000, 'outer.zip');
    const d = policy.decide(facts(), { ok: true, findings: r.findings, events: r.events, files: r.files });
    assert.equal(d.action, 'block');
    assert.match(d.reason, /type exe in outer\.zip\/inner\.zip\/setup\.exe/);
  });
});

describe('data filtering (DLP)', () => {
  it('checksums: Luhn and IBAN mod-97, true and false positives', () => {
    for (const good of ['4111 1111 1111 1111', '5500-0000-0000-0004', '340000000000009', '6011000990139424']) assert.ok(luhnValid(good), good);
    for (const bad of ['4111 1111 1111 1112', '1234567890123', '0000']) assert.equal(luhnValid(bad), false, bad);
    for (const good of ['DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', 'FR1420041010050500013M02606']) assert.ok(ibanValid(good), good);
    for (const bad of ['DE89 3704 0044 0532 0130 01', 'GB82WEST1234569876543X', 'XX00']) assert.equal(ibanValid(bad), false, bad);
  });

  const cfg = parseConfig(`${LISTENERS}
profiles:
  data-filtering:
    pii:
      alert-threshold: 2
      block-threshold: 20
      action: reject
      patterns:
        - { name: cards, type: credit-card, weight: 1 }
        - { name: ssn, type: us-ssn, weight: 5 }
        - { name: iban, type: iban, weight: 2 }
        - { name: mail, type: email, weight: 0 }
        - { name: project, regex: "PROJ-[0-9]{4}", weight: 3 }
        - { name: secret, keywords: [confidential, internal only], weight: 4 }
rules:
  - { name: all, profiles: { data-filtering: pii } }
`);
  const policy = new Policy(cfg);
  const engine = new DlpEngine(cfg.profiles['data-filtering'].pii!.patterns.map((p) => ({ key: `pii/${p.name}`, type: p.type, regex: p.regex, keywords: p.keywords })));
  async function decideText(body: string, chunk = 0): Promise<ReturnType<Policy['decide']>> {
    const inspector = new Inspector({ engines: [engine] });
    const msg = Buffer.from(`From: a@x\r\nSubject: numbers 4111111111111111\r\n\r\n${body}`, 'latin1');
    const s = inspector.begin();
    if (chunk > 0) for (let i = 0; i < msg.length; i += chunk) s.write(msg.subarray(i, i + chunk));
    else s.write(msg);
    const r = await s.end(5000);
    return policy.decide(facts(), { ok: true, findings: r.findings, events: r.events, files: r.files });
  }
  it('below the alert threshold: allow; values are never logged in clear', async () => {
    const d = await decideText('nothing here but 4111 1111 1111 1112 (bad Luhn) and 078-05-11201\r\n');
    // The header's card number counts once (weight 1 < alert threshold 2).
    assert.equal(d.action, 'allow');
  });
  it('alert between the thresholds, block (the profile action) above; masked samples in the reason', async () => {
    const alert = await decideText('IBAN DE89 3704 0044 0532 0130 00, ssn 123-45-6789\r\n');
    assert.equal(alert.action, 'alert');
    assert.match(alert.reason, /score 8 .*cards x1 \(4111 \*\*\*\* \*\*\*\* 1111\); ssn x1 \(\*\*\*-\*\*-6789\); iban x1 \(DE89 \*\*\*\* 3000\)/);
    assert.doesNotMatch(alert.reason, /123-45|3704 0044/);
    const block = await decideText(`${'card 5500 0000 0000 0004\r\n'.repeat(8)}CONFIDENTIAL, PROJ-1234 and Internal Only\r\n`);
    assert.equal(block.action, 'reject');
    assert.match(block.reason, /score 20 .*secret x2/);
    assert.equal(block.deciding?.threat, 'DLP:pii');
  });
  it('invalid SSNs and text that only looks like numbers are not counted', async () => {
    const d = await decideText('ssn 000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567 and order 1234-5678-9012\r\n');
    assert.equal(d.action, 'allow');
  });
  it('the same score for any chunking of the stream', async () => {
    const body = `${'x'.repeat(300)} 4111-1111-1111-1111 ${'y'.repeat(500)} DE89 3704 0044 0532 0130 00 ${'z'.repeat(700)} PROJ-9999\r\n`;
    const whole = (await decideText(body)).reason;
    for (const chunk of [1, 7, 255, 256, 257, 1000]) assert.equal((await decideText(body, chunk)).reason, whole, `chunks of ${chunk}`);
  });
});

describe('precedence: the most severe action wins, all verdicts kept', () => {
  const policy = new Policy(parseConfig(`${LISTENERS}
profiles:
  antivirus:
    av: { action: alert, on-unscannable: tempfail }
  file-blocking:
    fb: { rules: [{ name: exes, types: [exe], action: block }], action: reject }
rules:
  - { name: all, profiles: { antivirus: av, file-blocking: fb } }
`));
  it('reject (file blocking) over tempfail (unscannable) over alert (signature)', () => {
    const d = policy.decide(facts(), {
      ok: true,
      findings: [EICAR_FINDING],
      events: [{ name: 'ARCHIVE_ENCRYPTED', where: 'msg/3' }],
      files: [file(), file({ path: 'msg/4', detectedType: 'exe', name: 'x.exe' })],
    });
    assert.equal(d.action, 'reject');
    assert.deepEqual(d.verdicts.map((v) => [v.source, v.action]), [['file-blocking', 'reject'], ['inspection', 'tempfail'], ['antivirus', 'alert']]);
  });
  it('actions are ordered as documented', () => {
    assert.deepEqual([...ACTIONS].sort((a, b) => severityOf(a) - severityOf(b)), ['allow', 'alert', 'tempfail', 'reject', 'block', 'drop', 'reset-client', 'reset-server', 'reset-both']);
  });
});

describe('typed verdicts: the policy reads what a finding says, never its engine or threat name', () => {
  const policy = new Policy(parseConfig(`${LISTENERS}
profiles:
  antivirus:
    a: { action: reject, analysis-action: block, grayware-action: alert, analysis-on-timeout: tempfail }
default-rule: { antivirus: a }
`));
  // Engine and threat names that say nothing: only verdict and basis may decide.
  const finding = (over: Partial<Finding>): Finding => ({ ...EICAR_FINDING, engine: 'any-engine', threat: 'Some.Name', ...over });
  const decide = (f: Finding): string => policy.decide(facts(), { ok: true, findings: [f], events: [], files: [f.file] }).action;
  it('malicious by signature (or no verdict given): the profile action', () => {
    assert.equal(decide(finding({})), 'reject');
    assert.equal(decide(finding({ verdict: 'malicious', basis: 'signature' })), 'reject');
  });
  it('malicious by analysis: analysis-action', () => assert.equal(decide(finding({ verdict: 'malicious', basis: 'analysis' })), 'block'));
  it('grayware: grayware-action', () => assert.equal(decide(finding({ verdict: 'grayware', basis: 'analysis' })), 'alert'));
  it('pending: analysis-on-timeout', () => assert.equal(decide(finding({ verdict: 'pending', basis: 'analysis' })), 'tempfail'));
  it('a count is no verdict by itself (data filtering weighs it)', () => assert.equal(decide(finding({ verdict: 'count' })), 'allow'));
  it('an analysis engine named like a signature engine is still judged as analysis', () => {
    assert.equal(decide(finding({ engine: 'signatures', threat: 'Analysis.Grayware.pe', verdict: 'malicious', basis: 'analysis' })), 'block');
  });
});
