/**
 * The original destination of a redirected connection (transparent mode): SO_ORIGINAL_DST
 * through the small N-API addon in native/ (built by `npm install`), or, for TPROXY, the
 * accepted socket's own local address.
 */

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';

interface Addon {
  originalDst(fd: number): { address: string; port: number; family: number };
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

export function originalDestination(socket: Socket): { host: string; port: number } {
  const fd = (socket as Socket & { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor for the accepted socket');
  const dst = load().originalDst(fd);
  const host = dst.address.startsWith('::ffff:') ? dst.address.slice(7) : dst.address;
  return { host, port: dst.port };
}
