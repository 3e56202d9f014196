/**
 * A stored capture as a classic pcap file (LINKTYPE_RAW: each record one IPv4 or IPv6
 * packet) with synthesized TCP framing: per connection a handshake from whoever opened it,
 * then one segment per captured write or read (split at MAX_SEGMENT), consistent sequence and
 * acknowledgement numbers (a gap advances the sequence: Wireshark shows "previous segment not
 * captured"), FIN and RST segments where the capture saw them. The real addresses and ports
 * are used, so "Follow TCP stream" shows each leg's SMTP conversation.
 */

import { isIPv4, isIPv6 } from 'node:net';
import type { CaptureData, CapturedConnection } from '../gateway/capture.ts';

const LINKTYPE_RAW = 101;
const SNAPLEN = 262_144;
/** Largest payload per synthesized segment (fits an IPv4 packet with room to spare). */
const MAX_SEGMENT = 32_768;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** One direction of a connection: where it comes from, and its next sequence number. */
interface Flow {
  readonly src: Endpoint;
  readonly dst: Endpoint;
  seq: number;
}

export function capturePcap(c: CaptureData): Buffer {
  const out: Buffer[] = [globalHeader()];
  const flows = c.connections.map((conn, i) => flowsOf(conn, i));
  const opened = new Set<number>();
  const open = (i: number, t: number): void => {
    if (opened.has(i)) return;
    opened.add(i);
    const [initiator, responder] = flows[i]!.initiator;
    const t0 = Math.min(t, c.connections[i]!.opened);
    out.push(packet(t0, initiator, responder, SYN, Buffer.alloc(0)));
    initiator.seq += 1;
    out.push(packet(t0, responder, initiator, SYN | ACK, Buffer.alloc(0)));
    responder.seq += 1;
    out.push(packet(t0, initiator, responder, ACK, Buffer.alloc(0)));
  };
  for (const e of c.events) {
    const f = flows[e.conn];
    if (!f) continue;
    open(e.conn, e.t);
    const [from, to] = e.from === 'gateway' ? [f.gateway, f.peer] : [f.peer, f.gateway];
    switch (e.kind) {
      case 'data': {
        const bytes = e.bytes!;
        for (let off = 0; off < bytes.length; off += MAX_SEGMENT) {
          const part = bytes.subarray(off, off + MAX_SEGMENT);
          out.push(packet(e.t, from, to, ACK | (off + MAX_SEGMENT >= bytes.length ? PSH : 0), part));
          from.seq = (from.seq + part.length) >>> 0;
        }
        break;
      }
      case 'gap':
        from.seq = (from.seq + e.length!) >>> 0;
        break;
      case 'fin':
        out.push(packet(e.t, from, to, FIN | ACK, Buffer.alloc(0)));
        from.seq = (from.seq + 1) >>> 0;
        break;
      case 'rst':
        out.push(packet(e.t, from, to, RST | ACK, Buffer.alloc(0)));
        break;
      case 'tls':
        break;
    }
  }
  return Buffer.concat(out);
}

function flowsOf(conn: CapturedConnection, i: number): { gateway: Flow; peer: Flow; initiator: [Flow, Flow] } {
  // Initial sequence numbers: fixed per connection, so an export is the same every time.
  const gateway: Flow = { src: conn.local, dst: conn.peer, seq: (0x1000_0000 + i * 0x0100_0000) >>> 0 };
  const peer: Flow = { src: conn.peer, dst: conn.local, seq: (0x8000_0000 + i * 0x0100_0000) >>> 0 };
  // The sending MTA opened the client leg; the gateway opened the upstream leg.
  return { gateway, peer, initiator: conn.role === 'client' ? [peer, gateway] : [gateway, peer] };
}

function globalHeader(): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8);
  b.writeUInt32LE(0, 12);
  b.writeUInt32LE(SNAPLEN, 16);
  b.writeUInt32LE(LINKTYPE_RAW, 20);
  return b;
}

/** A pcap record holding one IP packet with one TCP segment from `from` to `to`. */
function packet(t: number, from: Flow, to: Flow, flags: number, payload: Buffer): Buffer {
  const tcp = Buffer.alloc(20 + payload.length);
  tcp.writeUInt16BE(from.src.port, 0);
  tcp.writeUInt16BE(from.dst.port, 2);
  tcp.writeUInt32BE(from.seq >>> 0, 4);
  tcp.writeUInt32BE(flags & ACK ? to.seq >>> 0 : 0, 8);
  tcp[12] = 5 << 4; // data offset: 20 bytes, no options
  tcp[13] = flags;
  tcp.writeUInt16BE(flags & RST ? 0 : 65_535, 14);
  payload.copy(tcp, 20);
  const v6 = !isIPv4(from.src.address) && isIPv6(from.src.address);
  const src = v6 ? ipv6Bytes(from.src.address) : ipv4Bytes(from.src.address);
  const dst = v6 ? ipv6Bytes(from.dst.address) : ipv4Bytes(from.dst.address);
  tcp.writeUInt16BE(tcpChecksum(src, dst, tcp), 16);
  const ip = v6 ? ipv6Header(src, dst, tcp.length) : ipv4Header(src, dst, tcp.length);
  const rec = Buffer.alloc(16);
  const sec = Math.floor(t / 1000);
  rec.writeUInt32LE(sec, 0);
  rec.writeUInt32LE(Math.min(999_999, Math.floor((t - sec * 1000) * 1000)), 4);
  rec.writeUInt32LE(ip.length + tcp.length, 8);
  rec.writeUInt32LE(ip.length + tcp.length, 12);
  return Buffer.concat([rec, ip, tcp]);
}

function ipv4Header(src: Buffer, dst: Buffer, tcpLength: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + tcpLength, 2);
  h.writeUInt16BE(0x4000, 6); // don't fragment
  h[8] = 64;
  h[9] = 6; // TCP
  src.copy(h, 12);
  dst.copy(h, 16);
  h.writeUInt16BE(onesComplement(sum16(h, 0)), 10);
  return h;
}

function ipv6Header(src: Buffer, dst: Buffer, tcpLength: number): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(tcpLength, 4);
  h[6] = 6; // TCP
  h[7] = 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return h;
}

function tcpChecksum(src: Buffer, dst: Buffer, tcp: Buffer): number {
  const pseudo = Buffer.alloc(src.length * 2 + (src.length === 4 ? 4 : 8));
  src.copy(pseudo, 0);
  dst.copy(pseudo, src.length);
  if (src.length === 4) {
    pseudo[9] = 6;
    pseudo.writeUInt16BE(tcp.length, 10);
  } else {
    pseudo.writeUInt32BE(tcp.length, 32);
    pseudo[39] = 6;
  }
  return onesComplement(sum16(tcp, sum16(pseudo, 0)));
}

/** The Internet checksum's running sum (RFC 1071), 16-bit words, odd byte padded. */
function sum16(b: Buffer, start: number): number {
  let sum = start;
  const even = b.length & ~1;
  for (let i = 0; i < even; i += 2) sum += b.readUInt16BE(i);
  if (even < b.length) sum += b[even]! << 8;
  return sum;
}

function onesComplement(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ipv4Bytes(a: string): Buffer {
  const parts = isIPv4(a) ? a.split('.').map(Number) : [0, 0, 0, 0];
  return Buffer.from(parts);
}

function ipv6Bytes(a: string): Buffer {
  const out = Buffer.alloc(16);
  const [head, tail] = a.split('::') as [string, string | undefined];
  const words = (s: string | undefined): number[] => (s ? s.split(':').filter((w) => w !== '').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  all.slice(0, 8).forEach((w, i) => out.writeUInt16BE(w & 0xffff, i * 2));
  return out;
}
