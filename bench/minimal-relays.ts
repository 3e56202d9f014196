/**
 * In-run baselines for "what Node can do here" (`npm run bench`, the ladder): two relays
 * with none of smtpwall's work, run as their own processes so their CPU is measured like
 * smtpwall's.
 *
 *   node bench/minimal-relays.ts pipe PORT UPSTREAM_PORT
 *     a plain TCP pipe: every byte both ways, no parsing
 *   node bench/minimal-relays.ts smtp PORT UPSTREAM_PORT
 *     an SMTP-aware cut-through relay: CRLF framing with indexOf, multi-line replies, each
 *     command relayed and its reply awaited, DATA bytes relayed as they come with the
 *     terminator held until seen, then sent with the final reply relayed
 *
 * Neither inspects, logs or limits anything: they are floors to measure against, not relays
 * to deploy.
 */

import { connect, createServer, type Socket } from 'node:net';

const [mode, portArg, upArg] = process.argv.slice(2);
const port = Number(portArg);
const upstreamPort = Number(upArg);
const TERMINATOR = Buffer.from('\r\n.\r\n');

function pipeSession(client: Socket): void {
  const up = connect(upstreamPort, '127.0.0.1');
  up.setNoDelay(true);
  client.setNoDelay(true);
  client.pipe(up);
  up.pipe(client);
  const end = (): void => {
    client.destroy();
    up.destroy();
  };
  client.on('error', end).on('close', end);
  up.on('error', end).on('close', end);
}

/** A reply is complete when a line `NNN ` (not `NNN-`) has arrived; returns its end or -1. */
function replyEnd(buf: Buffer): number {
  let at = 0;
  for (;;) {
    const lf = buf.indexOf(10, at);
    if (lf === -1) return -1;
    if (buf[at + 3] === 0x20 || lf - at < 5) return lf + 1;
    at = lf + 1;
  }
}

function smtpSession(client: Socket): void {
  const up = connect(upstreamPort, '127.0.0.1');
  up.setNoDelay(true);
  client.setNoDelay(true);
  let fromUp: Buffer = Buffer.alloc(0);
  let fromClient: Buffer = Buffer.alloc(0);
  let waiting = true; // the greeting comes first
  let inData = false;
  let afterData = false; // the next reply is DATA's (354 starts data mode)
  let tail: Buffer = Buffer.alloc(0); // the last bytes of data, held: they may begin a terminator split across reads
  const end = (): void => {
    client.destroy();
    up.destroy();
  };
  const pump = (): void => {
    while (!waiting && !inData && fromClient.length > 0) {
      const lf = fromClient.indexOf(10);
      if (lf === -1) return;
      const line = fromClient.subarray(0, lf + 1);
      fromClient = fromClient.subarray(lf + 1);
      afterData = line.length >= 6 && line.toString('latin1', 0, 4).toUpperCase() === 'DATA';
      waiting = true;
      up.write(line);
    }
    if (inData && fromClient.length > 0) data();
  };
  const data = (): void => {
    const joined = Buffer.concat([tail, fromClient]);
    const at = joined.indexOf(TERMINATOR);
    if (at === -1) {
      // Relay all but the last 4 bytes (held: they may begin the terminator).
      const keep = Math.min(4, joined.length);
      if (joined.length > keep) up.write(joined.subarray(0, joined.length - keep));
      tail = Buffer.from(joined.subarray(joined.length - keep));
      fromClient = Buffer.alloc(0);
      return;
    }
    up.write(joined.subarray(0, at + TERMINATOR.length));
    fromClient = joined.subarray(at + TERMINATOR.length);
    tail = Buffer.alloc(0);
    inData = false;
    waiting = true; // the final reply
  };
  up.on('data', (chunk: Buffer) => {
    fromUp = fromUp.length ? Buffer.concat([fromUp, chunk]) : chunk;
    for (let e = replyEnd(fromUp); e !== -1; e = replyEnd(fromUp)) {
      const reply = fromUp.subarray(0, e);
      fromUp = fromUp.subarray(e);
      client.write(reply);
      if (afterData && reply[0] === 0x33) inData = true;
      afterData = false;
      waiting = false;
    }
    pump();
  });
  client.on('data', (chunk: Buffer) => {
    fromClient = fromClient.length ? Buffer.concat([fromClient, chunk]) : chunk;
    pump();
  });
  client.on('error', end).on('close', end);
  up.on('error', end).on('close', end);
}

const server = createServer({ noDelay: true }, mode === 'pipe' ? pipeSession : smtpSession);
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
