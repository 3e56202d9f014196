/**
 * `smtpwall admin hash-password`: reads a password (or a bearer token) from standard input —
 * one line; on a terminal it asks without echo — and prints its hash as the last line, for
 * `admin.users[].password-hash` or `token-hash`.
 */

import { hashPassword } from '../../admin/passwords.ts';
import { command, UsageError } from '../command.ts';

export const adminCommand = command({
  name: 'admin',
  usage: ['admin hash-password   (the password on standard input; prompts without echo on a terminal)'],
  summary: 'admin plane helpers: hash a password or token for admin.users',
  options: {},
  help: {},
  notes: ['Exit status: 0 done, 2 no password given.'],
  async run({ positionals }) {
    if (positionals[0] !== 'hash-password' || positionals.length !== 1) throw new UsageError('expected "admin hash-password"');
    const secret = process.stdin.isTTY ? await promptHidden('password: ') : await firstLine();
    if (!secret) throw new UsageError('no password given on standard input');
    process.stdout.write(`${await hashPassword(secret)}\n`);
    return 0;
  },
});

async function firstLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

/** Raw mode: the typed characters are not echoed; Enter ends, Ctrl-C aborts. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let typed = '';
    const done = (err: Error | null): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (s: string): void => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new UsageError('aborted'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
