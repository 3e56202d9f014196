/**
 * swaks (Debian package) as a client nobody here wrote: a clean and an EICAR message through
 * the gateway, with and without PIPELINING. Skipped with a message where swaks is missing; CI
 * installs it (.ci/run).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { makeCert } from '../helpers/certs.ts';
import { type GatewayPeer, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const run = promisify(execFile);
const swaksMissing = await run('swaks', ['--version']).then(
  () => false,
  () => 'swaks is not installed (apt-get install swaks); .ci/run installs it',
);

async function swaks(args: string[]): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run('swaks', args, { timeout: 20_000 });
    return { out: stdout + stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { out: (e.stdout ?? '') + (e.stderr ?? ''), code: e.code ?? -1 };
  }
}

for (const mode of ['store-and-forward', 'cut-through'] as const) {
  describe(`swaks through the gateway, ${mode}`, { skip: swaksMissing }, () => {
    let up: UpstreamPeer;
    let gw: GatewayPeer;
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-swaks-'));
    const eicarFile = join(dir, 'eicar.com');
    writeFileSync(eicarFile, EICAR);
    before(async () => {
      up = await startUpstream();
      gw = await startGateway({ upstreamPort: up.port, forwarding: mode });
    });
    after(async () => {
      await gw.stop();
      await up.close();
    });

    for (const pipeline of [false, true]) {
      const p = pipeline ? ['--pipeline'] : [];
      it(`clean message is delivered${pipeline ? ' (PIPELINING)' : ''}`, async () => {
        const before = up.messages.length;
        const r = await swaks(['--server', `127.0.0.1:${gw.port}`, '--from', 'a@example.org', '--to', 'b@example.com', '--body', 'clean body from swaks', ...p]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /<- +250 /);
        assert.equal(up.messages.length, before + 1);
        assert.ok(up.messages[before]!.data.includes('clean body from swaks'));
      });

      it(`EICAR attachment is answered 541 5.4.1${pipeline ? ' (PIPELINING)' : ''}`, async () => {
        const before = up.messages.length;
        const r = await swaks(['--server', `127.0.0.1:${gw.port}`, '--from', 'a@example.org', '--to', 'b@example.com', '--attach', eicarFile, ...p]);
        assert.notEqual(r.code, 0);
        assert.match(r.out, /<\*\* +541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: [A-Z2-7.0-9]+\)/);
        assert.equal(up.messages.length, before);
      });
    }
  });
}

describe('swaks --tls through a terminating gateway', { skip: swaksMissing }, () => {
  it('STARTTLS, then clean delivered and EICAR answered 541, both inspected in clear inside', async () => {
    const cert = makeCert();
    const up = await startUpstream();
    const gw = await startGateway({ upstreamPort: up.port, listener: `tls: { cert: ${JSON.stringify(cert.certFile)}, key: ${JSON.stringify(cert.keyFile)} }` });
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-swaks-'));
    writeFileSync(join(dir, 'eicar.com'), EICAR);
    try {
      const base = ['--server', `127.0.0.1:${gw.port}`, '--from', 'a@example.org', '--to', 'b@example.com', '--tls'];
      const clean = await swaks([...base, '--body', 'clean over tls']);
      assert.equal(clean.code, 0, clean.out);
      assert.match(clean.out, /TLS started/);
      const bad = await swaks([...base, '--attach', join(dir, 'eicar.com')]);
      assert.match(bad.out, /<~\* +541 5\.4\.1 Content blocked by smtpwall/, 'the 541 came inside TLS');
      assert.equal(up.messages.length, 1);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});
