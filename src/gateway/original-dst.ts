/**
 * The original destination of a redirected connection (transparent mode): SO_ORIGINAL_DST
 * through the small N-API addon in native/ (built by `npm install`), or, for TPROXY, the
 * accepted socket's own local address.
 */

import { createRequire } from 'node:module';
import { isIPv6, Socket as NetSocket, type Socket } from 'node:net';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';

interface Addon {
  originalDst(fd: number): { address: string; port: number; family: number };
  transparentSocket?(family: number, address?: string, port?: number): number;
}

let addon: Addon | null = null;
let loadError: string | null = null;

function load(): Addon {
  if (addon) return addon;
  if (loadError === null) {
    try {
      const require = createRequire(import.meta.url);
      addon = require(join(import.meta.dirname, '../../build/Release/original_dst.node')) as Addon;
      return addon;
    } catch (err) {
      loadError = (err as Error).message.split('\n')[0]!;
    }
  }
  throw new ConfigError(
    `transparent mode needs the SO_ORIGINAL_DST addon, which is not built (${loadError}). ` +
      'Run `npm rebuild` (needs a C compiler, make, python3 and the Node.js headers).',
  );
}

/** Fail at start, not at the first connection, when transparent mode cannot work here. */
export function assertTransparentSupported(): void {
  if (process.platform !== 'linux') throw new ConfigError('transparent mode needs Linux');
  load();
}

/** TPROXY needs the addon's transparentSocket (an addon built before it lacks it). */
export function assertTproxySupported(): void {
  assertTransparentSupported();
  if (!load().transparentSocket) throw new ConfigError('tproxy mode needs the rebuilt addon: run `npm rebuild`');
}

/**
 * TPROXY: the listening socket, with IP_TRANSPARENT set before it is bound, so the kernel
 * hands it connections to any address (`-j TPROXY --on-port`). Needs CAP_NET_ADMIN.
 */
export function transparentListenFd(host: string, port: number): number {
  try {
    return load().transparentSocket!(isIPv6(host) ? 6 : 4, host, port);
  } catch (err) {
    throw new ConfigError(`tproxy listener ${host}:${port}: ${(err as Error).message}`);
  }
}

/**
 * TPROXY: the upstream connection from the client's own address, so the receiving server
 * sees the sending MTA (the return traffic reaches it through the router's policy routing).
 */
export function connectAsClient(clientAddress: string, host: string, port: number): Socket {
  const client = clientAddress.startsWith('::ffff:') ? clientAddress.slice(7) : clientAddress;
  const fd = load().transparentSocket!(isIPv6(host) ? 6 : 4);
  const socket = new NetSocket({ fd, readable: true, writable: true });
  socket.setNoDelay(true);
  return socket.connect({ host, port, localAddress: client });
}

/** TPROXY keeps the destination on the accepted socket: its own local address. */
export function tproxyDestination(socket: Socket, listeningPort: number): { host: string; port: number } {
  const host = (socket.localAddress ?? '').replace(/^::ffff:/, '');
  const port = socket.localPort ?? 0;
  if (port === listeningPort) throw new Error('connection was not diverted by a TPROXY rule (it came to the listening port itself)');
  return { host, port };
}

export function originalDestination(socket: Socket): { host: string; port: number } {
  const fd = (socket as Socket & { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor for the accepted socket');
  const dst = load().originalDst(fd);
  const host = dst.address.startsWith('::ffff:') ? dst.address.slice(7) : dst.address;
  return { host, port: dst.port };
}
