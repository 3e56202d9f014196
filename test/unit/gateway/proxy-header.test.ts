/**
 * PROXY protocol headers (HAProxy's proxy-protocol.txt): v1 lines and v2 binary headers, whole
 * and a byte at a time, and everything that is not one refused with a reason.
 */

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseProxyHeader, ProxyHeaderError } from '../../../src/gateway/proxy-header.ts';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(command: number, famProto: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = famProto;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

function v4body(src: string, dst: string, sport: number, dport: number, tlv = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12);
  src.split('.').forEach((x, i) => (b[i] = Number(x)));
  dst.split('.').forEach((x, i) => (b[4 + i] = Number(x)));
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return Buffer.concat([b, tlv]);
}

/** Fed a byte at a time: null until the last byte, then the same answer as whole. */
function byteByByte(buf: Buffer): ReturnType<typeof parseProxyHeader> {
  for (let i = 1; i < buf.length; i++) assert.equal(parseProxyHeader(buf.subarray(0, i)), null, `prefix of ${i} bytes`);
  return parseProxyHeader(buf);
}

describe('PROXY protocol header', () => {
  it('v1: TCP4, TCP6 and UNKNOWN; what follows is left', () => {
    const line = Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n');
    assert.deepEqual(parseProxyHeader(line), { header: { address: '192.0.2.7', port: 40000 }, length: 44 });
    assert.deepEqual(byteByByte(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 40000 25\r\n')), { header: { address: '2001:db8::7', port: 40000 }, length: 45 });
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { header: null, length: 15 });
  });

  it('v2: IPv4 with TLVs, IPv6, LOCAL (a health check)', () => {
    const tlv = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x00]); // ALPN "h2", NOOP
    const h = v2(1, 0x11, v4body('203.0.113.9', '192.0.2.1', 51000, 25, tlv));
    assert.deepEqual(byteByByte(h), { header: { address: '203.0.113.9', port: 51000 }, length: h.length });
    const six = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000009', 'hex').copy(six, 0);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(six, 16);
    six.writeUInt16BE(52000, 32);
    six.writeUInt16BE(25, 34);
    assert.deepEqual(parseProxyHeader(v2(1, 0x21, six)), { header: { address: '2001:db8::9', port: 52000 }, length: 16 + 36 });
    const mapped = Buffer.alloc(36);
    Buffer.from('00000000000000000000ffffc0000207', 'hex').copy(mapped, 0);
    assert.equal(parseProxyHeader(v2(1, 0x21, mapped))!.header!.address, '::ffff:192.0.2.7');
    assert.deepEqual(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))), { header: null, length: 16 });
  });

  it('refuses what is not a header, with a reason', () => {
    const bad: Array<[string, Buffer]> = [
      ['SMTP instead of a header', Buffer.from('EHLO client.example\r\n')],
      ['v1 with a bad protocol', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
      ['v1 with a bad address', Buffer.from('PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n')],
      ['v1 with a family mismatch', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')],
      ['v1 with a bad port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
      ['v1 with a port with a sign', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n')],
      ['v1 without a line end', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)],
      ['v2 with a bad version', Buffer.concat([SIG, Buffer.from([0x11, 0x11, 0, 12]), Buffer.alloc(12)])],
      ['v2 with a bad command', v2(2, 0x11, v4body('1.2.3.4', '5.6.7.8', 1, 2))],
      ['v2 UDP', v2(1, 0x12, v4body('1.2.3.4', '5.6.7.8', 1, 2))],
      ['v2 short IPv4', v2(1, 0x11, Buffer.alloc(8))],
      ['v2 unix socket', v2(1, 0x31, Buffer.alloc(216))],
      ['v2 too long', Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])])],
      ['a broken v2 signature', Buffer.from('0d0a0d0a000d0a51554954', 'hex').fill(0x41, 8, 9)],
    ];
    for (const [what, buf] of bad) assert.throws(() => parseProxyHeader(buf), ProxyHeaderError, what);
  });
});
