/**
 * Packet captures (`capture:`): a blocked transaction's session is kept with both legs, shown
 * as a transcript (`smtpwall capture show`) and exported as a pcap that tshark — Wireshark's
 * own dissectors, nobody's code here — reads as two TCP streams with the SMTP conversation,
 * the 541 reply and the reset.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureText } from '../../src/admin/capture-text.ts';
import { capturePcap } from '../../src/admin/pcap.ts';
import { CaptureStore, type StoredCapture } from '../../src/logs/capture-store.ts';
import { EICAR_MESSAGES, plain } from '../helpers/messages.ts';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { dotStuff, type GatewayPeer, RawClient, startGateway, startUpstream, until, type UpstreamPeer } from '../helpers/peers.ts';
import { hasCommand } from '../helpers/tools.ts';

const EICAR_MSG = `${dotStuff(EICAR_MESSAGES['base64 attachment']!.toString('latin1'))}.\r\n`;
const TSHARK = hasCommand('tshark');

async function blocked(gw: GatewayPeer, message = EICAR_MSG): Promise<string> {
  const c = await RawClient.connect(gw.port);
  assert.match((await c.begin())!, /^354 /);
  c.write(message);
  const reply = (await c.reply(5000))!;
  assert.match(reply, /^541 5\.4\.1 /);
  assert.equal(await c.end(), 'reset');
  return /id: ([A-Z0-9]+\.\d+)/.exec(reply)![1]!;
}

async function stored(gw: GatewayPeer, id: string): Promise<StoredCapture> {
  const store = new CaptureStore(gw.dataDir, { readonly: true });
  try {
    // Kept when the session ends: after the reset, once the upstream leg is closed too.
    await until(`capture of ${id}`, () => store.get(id) !== null);
    return store.get(id)!;
  } finally {
    store.close();
  }
}

function tshark(file: string, ports: number[], args: string[]): string {
  const decode = ports.flatMap((p) => ['-d', `tcp.port==${p},smtp`]);
  return execFileSync('tshark', ['-n', '-r', file, ...decode, ...args], { encoding: 'utf8' });
}

for (const mode of ['store-and-forward', 'cut-through'] as const) {
  describe(`packet capture of a blocked transaction, ${mode}`, () => {
    let up: UpstreamPeer;
    let gw: GatewayPeer;
    let dir: string;
    before(async () => {
      up = await startUpstream();
      gw = await startGateway({ upstreamPort: up.port, forwarding: mode });
      dir = mkdtempSync(join(tmpdir(), 'smtpwall-pcap-'));
    });
    after(async () => {
      await gw.stop();
      await up.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('keeps both legs: the transcript shows the conversation, the 541 and the reset', async () => {
      const id = await blocked(gw);
      const c = await stored(gw, id);
      assert.equal(c.connections.length, 2);
      assert.deepEqual(c.connections.map((x) => x.role).sort(), ['client', 'upstream']);
      const text = captureText(c);
      assert.match(text, /client> +MAIL FROM:<sender@example\.org>/);
      assert.match(text, /upstream> +220 /, 'the upstream greeting');
      assert.match(text, /upstream> +250 /);
      assert.match(text, />client +541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File/);
      assert.match(text, /#\d >client +\[RST: connection reset\]/);
      assert.match(text, /client> +Subject: /, 'message data is part of the capture');
      if (mode === 'cut-through') assert.match(text, />upstream +\[RST: connection reset\]/);
      else assert.match(text, />upstream +RSET/);
    });

    it('exports a pcap that tshark reads: SMTP on both legs, the 541, the RST segments', { skip: !TSHARK && 'tshark not installed' }, async () => {
      const id = await blocked(gw);
      const c = await stored(gw, id);
      const file = join(dir, `${mode}.pcap`);
      writeFileSync(file, capturePcap(c));
      const ports = [gw.port, up.port];
      // Two TCP streams, each opened by a handshake.
      const streams = tshark(file, ports, ['-T', 'fields', '-e', 'tcp.stream']).trim().split('\n');
      assert.deepEqual([...new Set(streams)].sort(), ['0', '1']);
      const codes = tshark(file, ports, ['-Y', 'smtp.response.code == 541', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'smtp.rsp.parameter']);
      assert.match(codes, new RegExp(`^${gw.port}\\t.*Content blocked by smtpwall`, 'm'), 'the 541, from the gateway to the client');
      const greeting = tshark(file, ports, ['-Y', `smtp.response.code == 220 && tcp.srcport == ${up.port}`, '-T', 'fields', '-e', 'frame.number']);
      assert.notEqual(greeting.trim(), '', 'the upstream greeting on the upstream leg');
      const resets = tshark(file, ports, ['-Y', 'tcp.flags.reset == 1', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport']);
      assert.match(resets, new RegExp(`^${gw.port}\\t\\d+$`, 'm'), 'RST from the gateway on the client leg');
      if (mode === 'cut-through') assert.match(resets, new RegExp(`^\\d+\\t${up.port}$`, 'm'), 'RST from the gateway on the upstream leg');
      // Nothing malformed, no checksum or sequence trouble on the way.
      const problems = tshark(file, ports, ['-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-Y', '_ws.malformed || _ws.expert.severity >= warning && !tcp.flags.reset', '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message']);
      assert.equal(problems.trim(), '', `tshark found problems:\n${problems}`);
      const follow = tshark(file, ports, ['-q', '-z', 'follow,tcp,ascii,0']);
      assert.match(follow, /MAIL FROM:<sender@example\.org>/);
    });
  });
}

describe('capture settings', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('when: threats (default) keeps no clean session; when: all keeps every one', async () => {
    for (const when of ['threats', 'all'] as const) {
      const gw = await startGateway({ upstreamPort: up.port, extra: `capture: { when: ${when} }` });
      try {
        const c = await RawClient.connect(gw.port);
        assert.match((await c.begin())!, /^354 /);
        c.write('Subject: clean\r\n\r\nclean\r\n.\r\n');
        const reply = (await c.reply())!;
        assert.match(reply, /^250 /);
        assert.match((await c.cmd('QUIT'))!, /^221 /);
        await c.end();
        const logs = gw.logs();
        await until('the traffic record', () => logs.listTraffic(5).length === 1);
        const sessionId = logs.listTraffic(1)[0]!.sessionId;
        logs.close();
        if (when === 'all') {
          const kept = await stored(gw, sessionId);
          assert.match(captureText(kept), /client> +QUIT/);
        } else {
          // A positive signal first: a blocked session after it is kept, so the store was written to.
          const id = await blocked(gw);
          await stored(gw, id);
          const store = new CaptureStore(gw.dataDir, { readonly: true });
          assert.equal(store.get(sessionId), null, 'the clean session was not kept');
          store.close();
        }
      } finally {
        await gw.stop();
      }
    }
  });

  it('max-bytes: a large message is cut with a marker, and the 541 and the reset after it are kept', async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'capture: { max-bytes: 64KiB }' });
    try {
      const big = plain('big', `${'a filler line of plain text, long enough\r\n'.repeat(15_000)}${EICAR.toString('latin1')}\r\n`).toString('latin1');
      const id = await blocked(gw, `${dotStuff(big)}.\r\n`);
      const c = await stored(gw, id);
      assert.ok(c.cutBytes > 400_000, `cut ${c.cutBytes}`);
      const kept = c.events.reduce((n, e) => n + (e.bytes?.length ?? 0), 0);
      assert.ok(kept <= 64 * 1024 + 64 * 1024, `kept ${kept}`);
      const text = captureText(c);
      assert.match(text, /\[\d+ bytes not captured: capture\.max-bytes\]/);
      assert.match(text, />client +541 5\.4\.1 /);
      assert.match(text, />client +\[RST/);
      if (TSHARK) {
        const file = join(tmpdir(), `smtpwall-cut-${process.pid}.pcap`);
        writeFileSync(file, capturePcap(c));
        try {
          const lost = execFileSync('tshark', ['-n', '-r', file, '-Y', 'tcp.analysis.lost_segment', '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
          assert.notEqual(lost.trim(), '', 'the gap shows as "previous segment not captured"');
        } finally {
          rmSync(file, { force: true });
        }
      }
    } finally {
      await gw.stop();
    }
  });
});
