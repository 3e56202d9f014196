/**
 * TCP reset of a connection that may be TLS. Node's resetAndDestroy() works only on a socket
 * whose handle is TCP; a TLSSocket's handle is the TLS layer, so the reset must be sent on
 * the TCP socket underneath (the one we upgraded, or the one a TLS server wrapped).
 */

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { noteReset } from './capture.ts';

export function resetConnection(socket: Socket, tcp?: Socket): void {
  if (socket.destroyed) return;
  noteReset(socket);
  if (!(socket instanceof TLSSocket)) {
    socket.resetAndDestroy();
    return;
  }
  // A TLS server's socket keeps the TCP socket it wrapped as _parent (not public API, so it
  // is checked): without it, a plain close is the best that can be done.
  const under = tcp ?? (socket as TLSSocket & { _parent?: unknown })._parent;
  if (under && typeof (under as Socket).resetAndDestroy === 'function' && !(under instanceof TLSSocket)) {
    (under as Socket).resetAndDestroy();
  }
  socket.destroy();
}
