/**
 * A minimal SMTP client for smtpwall's own use (the demo now; quarantine release later):
 * one message over one connection, with a transcript of what was said. Built on Upstream, so
 * it reads replies with the same strict parser the gateway uses.
 */

import { Upstream } from '../gateway/upstream.ts';

export interface SendResult {
  /** Every command and reply, in order, `C:`/`S:` prefixed. */
  readonly transcript: string[];
  /** The reply to end of data (or to the command that failed), null if the connection died. */
  readonly final: { code: number; text: string } | null;
  /** How the connection ended if it did not end with QUIT (e.g. ECONNRESET). */
  readonly connectionError: string | null;
}

export async function sendMessage(opts: {
  host: string;
  port: number;
  from: string;
  to: readonly string[];
  message: Buffer;
  helo?: string;
  timeoutMs?: number;
}): Promise<SendResult> {
  const t = opts.timeoutMs ?? 30_000;
  const transcript: string[] = [];
  const said = (r: { code: number; lines: readonly string[] }): { code: number; text: string } => {
    for (const l of r.lines) transcript.push(`S: ${r.code} ${l}`);
    return { code: r.code, text: r.lines.join(' ') };
  };
  const { upstream, greeting } = await Upstream.connect(opts.host, opts.port, t);
  said(greeting);
  const step = async (line: string): Promise<{ code: number; text: string }> => {
    transcript.push(`C: ${line}`);
    return said(await upstream.command(line, t));
  };
  try {
    const ehlo = await step(`EHLO ${opts.helo ?? 'client.smtpwall.local'}`);
    if (ehlo.code !== 250) return { transcript, final: ehlo, connectionError: null };
    const mail = await step(`MAIL FROM:<${opts.from}>`);
    if (mail.code !== 250) return { transcript, final: mail, connectionError: null };
    for (const rcpt of opts.to) await step(`RCPT TO:<${rcpt}>`);
    const data = await step('DATA');
    if (data.code !== 354) return { transcript, final: data, connectionError: null };
    transcript.push(`C: (${opts.message.length} bytes of message)`, 'C: .');
    await upstream.writeData(dotStuff(opts.message), t);
    upstream.write(Buffer.from('.\r\n'));
    const final = said(await upstream.reply(t));
    if (final.code >= 400) {
      // A gateway that blocks resets the connection right after its reply: show it.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await upstream.quit();
    const ended = upstream.failureReason;
    const reset = ended !== null && /ECONNRESET|EPIPE/.test(ended);
    if (reset) transcript.push(`-- connection ended: ${ended}`);
    return { transcript, final, connectionError: reset ? ended : null };
  } catch (err) {
    upstream.reset();
    const message = (err as Error).message;
    transcript.push(`-- connection ended: ${message}`);
    return { transcript, final: null, connectionError: message };
  }
}

/** RFC 5321 §4.5.2 transparency, and a final CRLF so the terminator starts a line. */
export function dotStuff(message: Buffer): Buffer {
  let text = message.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text.replace(/^\./gm, '..'), 'latin1');
}
