/**
 * The per-peer debug transcript (`debug-peers`, like Postfix's debug_peer_list): for a session
 * whose client or upstream address is listed, every command and reply on both legs goes to the
 * process log, one line each, with the direction — and nothing for any other session (a null
 * check per line). Message data is not transcribed (the maillog line has its size); AUTH
 * arguments are masked: credentials never reach a log.
 */

import type { LogFn } from '../logs/process-log.ts';

/** `client>` the client said, `>client` we said to it, `>upstream` we said, `upstream>` it said. */
export type Direction = 'client>' | '>client' | '>upstream' | 'upstream>';
export type Transcript = (dir: Direction, text: string) => void;

export function transcript(log: LogFn, session: string): Transcript {
  return (dir, text) => {
    for (const line of text.split(/\r?\n/)) {
      if (line !== '') log('info', 'debug', { session, dir, line });
    }
  };
}

/** `AUTH PLAIN dGVzdA==` → `AUTH PLAIN ****`; a continuation line → `****`. */
export function maskAuth(line: string): string {
  const m = /^(AUTH\s+\S+)(\s.*)?$/i.exec(line);
  if (m) return m[2] ? `${m[1]} ****` : m[1]!;
  return '****';
}
