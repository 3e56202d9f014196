/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a load balancer in TCP
 * mode (`send-proxy`, `send-proxy-v2`) puts the real client's address in front of the stream,
 * before any SMTP byte. A listener with `proxy-protocol: true` reads it first, from an address
 * in `proxy-from` only, and the session, its limits, rules and records then see the client the
 * load balancer saw.
 *
 * Version 1 is one text line (`PROXY TCP4 SRC DST SPORT DPORT\r\n`, at most 107 bytes);
 * version 2 a 16-byte binary header (a 12-byte signature, version and command, family,
 * length) and the addresses, plus TLVs that are skipped. `LOCAL` (v2) and `UNKNOWN` (v1) are
 * the proxy's own connections (health checks): the connection's own address stands.
 */

import { isIP } from 'node:net';
import type { Socket } from 'node:net';

export interface ProxiedPeer {
  readonly address: string;
  readonly port: number;
}

/** `null`: a LOCAL/UNKNOWN header, the proxy speaking for itself. */
export type ProxyHeader = ProxiedPeer | null;

export class ProxyHeaderError extends Error {}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;
/** Longest v2 header taken (addresses and TLVs); HAProxy sends far less. */
const V2_MAX = 16 + 1024;

/**
 * Parse a header at the start of `buf`. Returns how many bytes it took, or `null` when more
 * bytes are needed; throws ProxyHeaderError for anything that is not a valid header.
 */
export function parseProxyHeader(buf: Buffer): { header: ProxyHeader; length: number } | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0x0d) {
    if (buf.length < 16) {
      const n = Math.min(12, buf.length);
      if (!V2_SIGNATURE.subarray(0, n).equals(buf.subarray(0, n))) throw new ProxyHeaderError('not a PROXY protocol header');
      return null;
    }
    if (!buf.subarray(0, 12).equals(V2_SIGNATURE)) throw new ProxyHeaderError('not a PROXY protocol v2 signature');
    const verCmd = buf[12]!;
    if (verCmd >> 4 !== 2) throw new ProxyHeaderError(`PROXY v2: version ${verCmd >> 4}`);
    const command = verCmd & 0x0f;
    const famProto = buf[13]!;
    const length = buf.readUInt16BE(14);
    if (16 + length > V2_MAX) throw new ProxyHeaderError(`PROXY v2: header of ${16 + length} bytes`);
    if (buf.length < 16 + length) return null;
    if (command === 0) return { header: null, length: 16 + length }; // LOCAL
    if (command !== 1) throw new ProxyHeaderError(`PROXY v2: command ${command}`);
    const family = famProto >> 4;
    const proto = famProto & 0x0f;
    if (family === 0) return { header: null, length: 16 + length }; // UNSPEC: no address given
    if (proto !== 1) throw new ProxyHeaderError('PROXY v2: not a TCP stream');
    const a = buf.subarray(16, 16 + length);
    if (family === 1) {
      if (length < 12) throw new ProxyHeaderError('PROXY v2: short IPv4 addresses');
      return { header: { address: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`, port: a.readUInt16BE(8) }, length: 16 + length };
    }
    if (family === 2) {
      if (length < 36) throw new ProxyHeaderError('PROXY v2: short IPv6 addresses');
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(a.readUInt16BE(i).toString(16));
      return { header: { address: compressV6(groups), port: a.readUInt16BE(32) }, length: 16 + length };
    }
    throw new ProxyHeaderError(`PROXY v2: address family ${family} (unix sockets are not a client address)`);
  }
  if (buf[0] !== 0x50 /* P */) throw new ProxyHeaderError('not a PROXY protocol header');
  const end = buf.indexOf('\r\n');
  if (end === -1) {
    if (buf.length >= V1_MAX) throw new ProxyHeaderError('PROXY v1: no line end within 107 bytes');
    if (!'PROXY '.startsWith(buf.toString('latin1', 0, Math.min(6, buf.length)))) throw new ProxyHeaderError('not a PROXY protocol header');
    return null;
  }
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') throw new ProxyHeaderError('not a PROXY protocol header');
  if (parts[1] === 'UNKNOWN') return { header: null, length: end + 2 };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) throw new ProxyHeaderError(`PROXY v1: malformed line "${line.slice(0, 107)}"`);
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const want = proto === 'TCP4' ? 4 : 6;
  if (isIP(src) !== want || isIP(dst) !== want) throw new ProxyHeaderError(`PROXY v1: not ${proto} addresses`);
  const port = (p: string) => (/^(0|[1-9]\d{0,4})$/.test(p) && Number(p) <= 65535 ? Number(p) : -1);
  if (port(sport) < 0 || port(dport) < 0) throw new ProxyHeaderError('PROXY v1: bad port');
  return { header: { address: src, port: port(sport) }, length: end + 2 };
}

function compressV6(groups: string[]): string {
  // The longest run of zero groups becomes "::" (RFC 5952), as Node writes remoteAddress.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  const text = best === -1 ? groups.join(':') : `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  // An IPv4-mapped address is written as Node writes it (::ffff:1.2.3.4).
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (mapped) {
    const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return text;
}

/**
 * Read the header from a new connection: resolves with it (and gives back any bytes after
 * it), rejects on a malformed header, the connection ending, or no header within `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | null, header?: ProxyHeader): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (err) reject(err);
      else resolve(header ?? null);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let parsed: ReturnType<typeof parseProxyHeader>;
      try {
        parsed = parseProxyHeader(buf);
      } catch (err) {
        return done(err as Error);
      }
      if (!parsed) return;
      socket.pause();
      // What the client sent after the header is the session's (a pipelining client).
      if (buf.length > parsed.length) socket.unshift(buf.subarray(parsed.length));
      done(null, parsed.header);
    };
    const onEnd = (): void => done(new ProxyHeaderError('the connection ended before a PROXY header'));
    const timer = setTimeout(() => done(new ProxyHeaderError(`no PROXY header within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
