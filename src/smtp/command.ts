/**
 * SMTP command parsing (RFC 5321 §4.1): verb and argument, and the envelope commands' paths
 * and ESMTP parameters. Pure: no policy, no I/O. Syntax errors come back as values with the
 * reply a strict server would give, never as exceptions.
 */

export interface Command {
  /** Upper-cased verb, e.g. `MAIL`. */
  readonly verb: string;
  /** Everything after the verb and one space, unchanged. */
  readonly arg: string;
  /** The exact line as received (no CRLF), for relaying unchanged. */
  readonly raw: string;
}

export function parseCommand(line: Buffer): Command {
  // latin1 keeps every byte as one char, so relaying `raw` reproduces the exact bytes.
  const raw = line.toString('latin1');
  const sp = raw.indexOf(' ');
  const verb = (sp === -1 ? raw : raw.slice(0, sp)).toUpperCase();
  const arg = sp === -1 ? '' : raw.slice(sp + 1);
  return { verb, arg, raw };
}

export interface EnvelopePath {
  /** The address inside `<>`, empty for the null reverse-path. */
  readonly address: string;
  /** ESMTP parameters, keys upper-cased (`SIZE`, `BODY`, `SMTPUTF8`, `RET`, `NOTIFY` …). */
  readonly params: ReadonlyMap<string, string | true>;
}

export type PathResult =
  | { readonly ok: true; readonly path: EnvelopePath }
  | { readonly ok: false; readonly reply: { code: number; enhanced: string; text: string } };

const syntaxError = (text: string): PathResult => ({
  ok: false,
  reply: { code: 501, enhanced: '5.5.4', text },
});

/**
 * Parse `FROM:<path> params` / `TO:<path> params`. Accepts a space after the colon (as Postfix
 * does) but requires the angle brackets (RFC 5321 §4.1.2).
 */
export function parsePath(arg: string, keyword: 'FROM' | 'TO'): PathResult {
  const head = arg.slice(0, keyword.length + 1).toUpperCase();
  if (head !== `${keyword}:`) return syntaxError(`Syntax: ${keyword === 'FROM' ? 'MAIL FROM:<address>' : 'RCPT TO:<address>'}`);
  const rest = arg.slice(keyword.length + 1).trimStart();
  if (!rest.startsWith('<')) return syntaxError('Syntax error in address: missing <');
  const close = findPathEnd(rest);
  if (close === -1) return syntaxError('Syntax error in address: missing >');
  let address = rest.slice(1, close);
  // RFC 5321 §4.1.2 source routes (`@a,@b:user@c`) are obsolete; receivers must ignore them.
  const route = /^@[^:]*:/.exec(address);
  if (route) address = address.slice(route[0].length);
  if (/[\s<>]/.test(address) && !address.startsWith('"')) return syntaxError('Syntax error in address');
  if (keyword === 'TO' && address === '') return syntaxError('Syntax error: empty recipient');
  const params = new Map<string, string | true>();
  const tail = rest.slice(close + 1);
  if (tail !== '' && !tail.startsWith(' ')) return syntaxError('Syntax error after address');
  for (const word of tail.split(' ')) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    const key = (eq === -1 ? word : word.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return syntaxError(`Syntax error in parameter ${key.slice(0, 40)}`);
    params.set(key, eq === -1 ? true : word.slice(eq + 1));
  }
  return { ok: true, path: { address, params } };
}

/** Index of the `>` closing the path, honouring a quoted local part. */
function findPathEnd(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '>' && !quoted) return i;
  }
  return -1;
}
