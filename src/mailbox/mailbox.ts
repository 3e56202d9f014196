/**
 * The built-in mailbox: a minimal SMTP receiver inside the process that stores every delivered
 * message as an .eml file (`upstream: mailbox:DIR`). It lets a fresh install do real work with
 * no mail server, and it is the receiving side of `smtpwall demo`.
 *
 * It reuses the gateway's own wire code (strict line and data framing), so it accepts exactly
 * what smtpwall forwards. Files are written to a temp name and renamed, so a reader never sees
 * half a message; the 250 is sent only after the rename.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { parseCommand } from '../smtp/command.ts';
import { DataReader } from '../smtp/data-reader.ts';
import { formatReply } from '../smtp/reply.ts';
import { ClientReader } from '../gateway/client-reader.ts';

const IDLE_MS = 5 * 60_000;
const MAX_MESSAGE_BYTES = 1024 ** 3;

export interface StoredMessage {
  readonly file: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly size: number;
}

export class MailboxServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(
    readonly dir: string,
    private readonly onStored: (m: StoredMessage) => void = () => {},
    private readonly hostname = 'mailbox.smtpwall',
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {}); // a client that resets is normal here; the session ends
      void this.#session(socket);
    });
  }

  async listen(host = '127.0.0.1', port = 0): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    const a = this.#server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #session(socket: Socket): Promise<void> {
    socket.setNoDelay(true);
    const out: Buffer[] = [];
    const flush = (): void => {
      if (out.length && !socket.destroyed) socket.write(Buffer.concat(out.splice(0)));
    };
    const reply = (code: number, text: string | string[]): void => void out.push(formatReply(code, text));
    const reader = new ClientReader(socket, flush);
    let from: string | null = null;
    let rcpts: string[] = [];
    reply(220, `${this.hostname} ESMTP smtpwall mailbox`);
    try {
      for (;;) {
        const r = await reader.readLine(2048, IDLE_MS);
        if (r.kind === 'eof') break;
        if (r.kind !== 'line') {
          reply(500, '5.5.2 Syntax error');
          continue;
        }
        const cmd = parseCommand(r.line);
        const addr = /<([^>]*)>/.exec(cmd.arg)?.[1];
        switch (cmd.verb) {
          case 'EHLO':
            reply(250, [this.hostname, 'PIPELINING', `SIZE ${MAX_MESSAGE_BYTES}`, '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']);
            break;
          case 'HELO':
            reply(250, this.hostname);
            break;
          case 'MAIL':
            if (addr === undefined) reply(501, '5.5.4 Syntax: MAIL FROM:<address>');
            else {
              from = addr;
              rcpts = [];
              reply(250, '2.1.0 Ok');
            }
            break;
          case 'RCPT':
            if (from === null) reply(503, '5.5.1 Error: need MAIL command');
            else if (!addr) reply(501, '5.5.4 Syntax: RCPT TO:<address>');
            else {
              rcpts.push(addr);
              reply(250, '2.1.5 Ok');
            }
            break;
          case 'DATA': {
            if (from === null || rcpts.length === 0) {
              reply(554, '5.5.1 Error: no valid recipients');
              break;
            }
            reply(354, 'End data with <CR><LF>.<CR><LF>');
            const stored = await this.#receive(reader, from, rcpts);
            if (stored === null) return; // client gone mid-message: nothing stored
            if ('error' in stored) reply(550, `5.6.0 ${stored.error}`);
            else {
              this.onStored(stored);
              reply(250, `2.0.0 Ok: stored as ${stored.file.split('/').pop()}`);
            }
            from = null;
            rcpts = [];
            break;
          }
          case 'RSET':
            from = null;
            rcpts = [];
            reply(250, '2.0.0 Ok');
            break;
          case 'NOOP':
            reply(250, '2.0.0 Ok');
            break;
          case 'QUIT':
            reply(221, '2.0.0 Bye');
            flush();
            socket.end();
            return;
          default:
            reply(502, '5.5.2 Error: command not recognized');
        }
      }
    } catch {
      // Timeout or reset: the session simply ends; an incomplete message was never stored.
    } finally {
      flush();
      socket.end();
    }
  }

  async #receive(reader: ClientReader, from: string, rcpts: string[]): Promise<StoredMessage | { error: string } | null> {
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`;
    const final = join(this.dir, name);
    const tmp = join(this.dir, `.${name}.tmp`);
    const file = await open(tmp, 'wx', 0o640);
    const data = new DataReader(1_000_000);
    let size = 0;
    let done = false;
    try {
      for (;;) {
        const chunk = await reader.readChunk(IDLE_MS);
        if (chunk === null) return null;
        const r = data.push(chunk);
        if (r.consumed < chunk.length) reader.unshift(chunk.subarray(r.consumed));
        for (const c of r.content) {
          size += c.length;
          await file.write(c);
        }
        if (r.ended) break;
      }
      await file.close();
      if (data.anomaly) return { error: `message refused: ${data.anomaly}` };
      await rename(tmp, final);
      done = true;
      return { file: final, mailFrom: from, rcptTo: [...rcpts], size };
    } finally {
      await file.close().catch(() => undefined);
      if (!done) await rm(tmp, { force: true });
    }
  }
}
