import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { enforcementFor } from '../../../src/gateway/enforce.ts';
import type { Finding } from '../../../src/inspect/types.ts';
import { ACTIONS } from '../../../src/policy/actions.ts';
import { Policy, renderReply } from '../../../src/policy/decide.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';
import { parseDuration, parseSize } from '../../../src/policy/units.ts';

const LISTENERS = 'listeners:\n  - { name: in, listen: "127.0.0.1:2525", upstream: "127.0.0.1:25" }\n  - { name: lab, listen: "127.0.0.1:2526", upstream: "127.0.0.1:25" }\n';

const finding: Finding = {
  engine: 'signatures',
  threat: 'EICAR-Test-File',
  threatId: '12345678',
  signature: 'body:EICAR-Test-File',
  severity: 'high',
  file: { path: 'msg/2', name: 'e.com', declaredType: null, detectedType: 'text', flags: [], depth: 0, layers: 1, size: 68, sha256: 'x', md5: 'y', encoding: 'base64' },
};

const facts = (over: Partial<{ listener: string; clientAddress: string; mailFrom: string; rcptTo: string[] }> = {}) => ({
  listener: 'in',
  clientAddress: '192.0.2.10',
  mailFrom: 'alice@partner.example',
  rcptTo: ['bob@corp.example'],
  ...over,
});

describe('rules: first match wins', () => {
  const cfg = parseConfig(`${LISTENERS}
profiles:
  antivirus:
    alert-only: { action: alert }
    hard: { action: reset-both }
    strict: { action: block }
rules:
  - { name: lab, match: { listeners: [lab] }, profiles: { antivirus: alert-only } }
  - { name: trusted-net, match: { client: ["10.0.0.0/8", "!10.9.9.9"] }, profiles: { antivirus: alert-only } }
  - { name: partner, match: { from: ["@partner.example"], to: ["*@corp.example"] }, profiles: { antivirus: hard } }
  - { name: null-sender, match: { from: ["<>"] }, profiles: { antivirus: strict } }
  - { name: v6, match: { client: ["2001:db8::/32"] }, profiles: { antivirus: alert-only } }
`);
  const policy = new Policy(cfg);
  const table: Array<[string, ReturnType<typeof facts>, string, string]> = [
    ['listener', facts({ listener: 'lab' }), 'lab', 'alert'],
    ['cidr', facts({ clientAddress: '10.1.2.3' }), 'trusted-net', 'alert'],
    ['negated cidr', facts({ clientAddress: '10.9.9.9' }), 'partner', 'reset-both'],
    ['v4-mapped v6 client', facts({ clientAddress: '::ffff:10.1.2.3' }), 'trusted-net', 'alert'],
    ['domain + wildcard', facts(), 'partner', 'reset-both'],
    ['case-insensitive', facts({ mailFrom: 'ALICE@Partner.Example', rcptTo: ['x@other.example', 'B@CORP.EXAMPLE'] }), 'partner', 'reset-both'],
    ['wildcard miss', facts({ rcptTo: ['bob@corp.example.net'] }), 'default', 'block'],
    ['null sender', facts({ mailFrom: '' }), 'null-sender', 'block'],
    ['ipv6', facts({ clientAddress: '2001:db8::1', mailFrom: 'x@y.example' }), 'v6', 'alert'],
    ['no rule matches → built-in default', facts({ mailFrom: 'x@elsewhere.example' }), 'default', 'block'],
  ];
  for (const [name, f, rule, action] of table) {
    it(`${name} → rule ${rule}, ${action}`, () => {
      const d = policy.decide(f, { ok: true, findings: [finding], events: [] });
      assert.equal(d.rule, rule);
      assert.equal(d.action, action);
      assert.equal(d.deciding, finding);
      assert.match(d.reason, /EICAR-Test-File in msg\/2 \(e\.com\)/);
    });
  }
  it('no finding → allow; scan error → on-error (tempfail); inspection limit → on-error', () => {
    assert.equal(policy.decide(facts(), { ok: true, findings: [], events: [] }).action, 'allow');
    const err = policy.decide(facts({ mailFrom: 'x@z.example' }), { ok: false, error: 'engine down', events: [] });
    assert.equal(err.action, 'tempfail');
    assert.match(err.reason, /engine down/);
    const lim = policy.decide(facts({ mailFrom: 'x@z.example' }), { ok: true, findings: [], events: [{ name: 'MIME_DEPTH_EXCEEDED', where: 'msg/1' }] });
    assert.equal(lim.action, 'tempfail');
    assert.equal(lim.threat, 'MIME_DEPTH_EXCEEDED');
    const partial = { ok: true as const, findings: [], events: [{ name: 'MIME_MESSAGE_PARTIAL' as const, where: 'msg' }] };
    const p = policy.decide(facts({ mailFrom: 'x@z.example' }), partial);
    assert.equal(p.action, 'block', 'message/partial gets the threat action of the profile');
    assert.equal(p.threat, 'MIME_MESSAGE_PARTIAL');
    assert.equal(policy.decide(facts({ listener: 'lab' }), partial).action, 'block', 'on-unscannable is its own knob (default block)');
  });
  it('one engine failing does not hide what another found: a signature match blocks even with on-error allow', () => {
    const p = new Policy(parseConfig(`${LISTENERS}
profiles:
  antivirus:
    lenient: { action: block, on-error: allow }
rules:
  - { name: all, profiles: { antivirus: lenient } }
`));
    const file = { path: 'msg/2', name: 'e.com', declaredType: null, detectedType: 'com', flags: [], depth: 0, layers: 1, size: 68, sha256: 'a'.repeat(64), md5: '', encoding: 'base64' };
    const eicar = { engine: 'signatures', threat: 'EICAR-Test-File', threatId: '10000001', signature: 'x', severity: 'high' as const, file };
    const errors = [{ engine: 'clamd', path: 'msg/2', message: 'engine clamd failed: connect ECONNREFUSED' }];
    const both = p.decide(facts(), { ok: true, findings: [eicar], events: [], files: [file], errors });
    assert.equal(both.action, 'block');
    assert.equal(both.threat, 'EICAR-Test-File');
    assert.ok(both.verdicts.some((v) => v.action === 'allow' && /scan incomplete: engine clamd failed/.test(v.reason)), 'the failure is a verdict of its own');
    const alone = p.decide(facts(), { ok: true, findings: [], events: [], files: [file], errors });
    assert.equal(alone.action, 'allow', 'nothing found, the engine failed: on-error decides');
    assert.equal(alone.threat, 'scan-error');
    assert.equal(policy.decide(facts({ mailFrom: 'x@z.example' }), { ok: true, findings: [], events: [], errors }).action, 'tempfail', 'default on-error: tempfail');
  });
  it('archive events: limits → on-archive-limit, unreadable → on-unscannable, the most severe wins', () => {
    const p = new Policy(parseConfig(`${LISTENERS}
profiles:
  antivirus:
    mixed: { action: alert, on-archive-limit: reject, on-unscannable: tempfail }
rules:
  - { name: all, profiles: { antivirus: mixed } }
`));
    const ev = (...names: string[]) => ({ ok: true as const, findings: [], events: names.map((name) => ({ name, where: 'msg/2/a.zip', detail: 'x' })) as never });
    assert.equal(p.decide(facts(), ev('ARCHIVE_RATIO_EXCEEDED')).action, 'reject');
    assert.match(p.decide(facts(), ev('ARCHIVE_RATIO_EXCEEDED')).reason, /archive limit: ARCHIVE_RATIO_EXCEEDED at msg\/2\/a\.zip \(x\)/);
    assert.equal(p.decide(facts(), ev('ARCHIVE_ENCRYPTED')).action, 'tempfail');
    assert.equal(p.decide(facts(), ev('ARCHIVE_ENCRYPTED', 'ARCHIVE_FILES_EXCEEDED')).threat, 'ARCHIVE_FILES_EXCEEDED');
    assert.equal(p.decide(facts(), { ok: true, findings: [finding], events: [] }).action, 'alert');
    assert.equal(p.decide(facts(), { ok: true, findings: [finding], events: [{ name: 'ARCHIVE_CORRUPT', where: 'm' }] }).action, 'tempfail');
    assert.equal(p.decide(facts(), ev('BARE_LF')).action, 'allow');
  });
});

describe('enforcement table (DESIGN.md actions)', () => {
  const policy = new Policy(parseConfig(LISTENERS));
  for (const action of ACTIONS) {
    for (const mode of ['store-and-forward', 'cut-through'] as const) {
      it(`${action}, ${mode}`, () => {
        const d = { ...policy.decide(facts(), { ok: true, findings: [finding], events: [] }), action };
        const e = enforcementFor(d, mode, 'ABC.1');
        const delivered = action === 'allow' || action === 'alert';
        assert.equal(e.upstream === 'deliver', delivered);
        if (!delivered && mode === 'cut-through') assert.equal(e.upstream, 'reset', 'cut-through can only abandon by reset');
        if (!delivered && mode === 'store-and-forward' && !action.startsWith('reset-server') && action !== 'reset-both') {
          assert.notEqual(e.upstream, 'reset', 'store-and-forward ends the upstream politely');
        }
        const reply = { block: 541, reject: 550, tempfail: 451 }[action as string];
        assert.equal(e.reply?.code, reply);
        if (action === 'block') assert.equal(e.reply!.text, '5.4.1 Content blocked by smtpwall (threat: EICAR-Test-File, id: ABC.1)');
        assert.equal(e.client, { block: 'reset', 'reset-client': 'reset', 'reset-both': 'reset', drop: 'close', 'reset-server': 'close' }[action as string] ?? 'continue');
      });
    }
  }
  it('renders every placeholder and censors values', () => {
    assert.deepEqual(renderReply('554 5.7.1 {threat} {id} {rule}', { threat: 'T\r\nX', id: 'I', rule: 'R' }), { code: 554, text: '5.7.1 T??X I R' });
  });
});

describe('configuration', () => {
  it('units', () => {
    assert.equal(parseSize('25MiB'), 25 * 1024 * 1024);
    assert.equal(parseSize('100kb'), 100_000);
    assert.equal(parseSize(42), 42);
    assert.equal(parseSize('10 parsecs'), null);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration(2), 2000);
    assert.equal(parseDuration('soon'), null);
  });
  const errors: Array<[string, RegExp]> = [
    ['listeners: []\n', /^f\.yaml:1:\d+: listeners: at least one listener/],
    [`${LISTENERS}bogus: 1\n`, /^f\.yaml:4:1: \(top level\): unknown key "bogus"/],
    [`${LISTENERS}limits:\n  max-message-size: lots\n`, /^f\.yaml:5:21: limits\.max-message-size: expected a size/],
    [`${LISTENERS}rules:\n  - { name: r, profiles: { antivirus: nope } }\n`, /rules\[0\]\.profiles\.antivirus: no antivirus profile named "nope"/],
    [`${LISTENERS}profiles:\n  antivirus:\n    p: { action: explode }\n`, /profiles\.antivirus\.p\.action: expected one of "default", "allow"/],
    [`${LISTENERS}profiles:\n  antivirus:\n    p: { replies: { block: "250 ok" } }\n`, /replies\.block: expected "5NN 5\.X\.Y text"/],
    ['listeners:\n  - { name: a, listen: nowhere, upstream: "x:1" }\n', /listeners\[0\]\.listen: expected host:port/],
    ['listeners:\n  - { name: a, listen: ":25", upstream: "x:1" }\n  - { name: a, listen: ":26", upstream: "x:1" }\n', /duplicate listener name "a"/],
    ['listeners: [ {\n', /^f\.yaml:\d+:\d+: YAML syntax error/],
  ];
  for (const [text, want] of errors) {
    it(`refuses ${JSON.stringify(text.split('\n').slice(-2).join(' ').slice(0, 50))} naming file, line and key`, () => {
      assert.throws(() => parseConfig(text, 'f.yaml'), (e: Error) => {
        assert.match(e.message, want);
        return true;
      });
    });
  }
  it('applies defaults and freezes the result', () => {
    const cfg = parseConfig(LISTENERS);
    assert.equal(cfg.listeners[0]!.forwarding, 'store-and-forward');
    assert.equal(cfg.limits['max-message-size'], 25 * 1024 * 1024);
    assert.ok(Object.isFrozen(cfg.limits));
  });
});

describe('workers', () => {
  const base = 'listeners:\n  - { name: a, listen: "127.0.0.1:2525", upstream: "127.0.0.1:25" }\n';
  it('a number, 1 by default, or auto: one per processor this process may use', () => {
    assert.equal(parseConfig(base).workers, 1);
    assert.equal(parseConfig(`${base}workers: 3\n`).workers, 3);
    assert.equal(parseConfig(`${base}workers: auto\n`).workers, availableParallelism());
    assert.throws(() => parseConfig(`${base}workers: many\n`), /workers/);
    assert.throws(() => parseConfig(`${base}workers: 0\n`), /workers/);
  });
});
