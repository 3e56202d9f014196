/**
 * Unix ar archives, and so Debian packages (`.deb`: `debian-binary`, `control.tar.*` with the
 * maintainer scripts that run as root at install, `data.tar.*`): read natively, every member
 * as it is stored. 7-Zip opens a .deb as its data.tar alone (its ar handler shows the package's
 * contents, not the control archive), so the scripts in control.tar would go unseen; bsdtar
 * and `ar x` give every member, and so does this. GNU long names (the `//` table, `/123`) and
 * BSD ones (`#1/len`) are read; the symbol table (`/`, `__.SYMDEF`) is no member.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

export const AR_MAGIC = Buffer.from('!<arch>\n', 'latin1');
const HEADER = 60;

export async function unpackAr(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  let longNames: Buffer | null = null;
  for (let p = AR_MAGIC.length; p + HEADER <= b.length; ) {
    if (b[p + 58] !== 0x60 || b[p + 59] !== 0x0a) {
      ctx.event('ARCHIVE_CORRUPT', `ar: bad member header at ${p}`);
      break;
    }
    let name = b.toString('latin1', p, p + 16).trimEnd();
    const size = Number(b.toString('latin1', p + 48, p + 58).trim());
    if (!Number.isSafeInteger(size) || size < 0) {
      ctx.event('ARCHIVE_CORRUPT', `ar: bad member size at ${p}`);
      break;
    }
    let start = p + HEADER;
    let length = size;
    if (start + size > b.length) {
      ctx.event('ARCHIVE_CORRUPT', `ar: ${name} runs past the end`);
      length = b.length - start;
    }
    p = start + size + (size % 2); // members are padded to an even offset
    if (name === '//') {
      longNames = b.subarray(start, start + length);
      continue;
    }
    if (name === '/' || name === '/SYM64/' || name.startsWith('__.SYMDEF')) continue;
    const bsd = /^#1\/(\d+)$/.exec(name);
    if (bsd) {
      const n = Math.min(Number(bsd[1]), length);
      name = b.toString('utf8', start, start + n).replace(/\0+$/, '');
      start += n;
      length -= n;
    } else if (/^\/\d+$/.test(name) && longNames) {
      const at = Number(name.slice(1));
      const end = longNames.indexOf('/\n', at, 'latin1');
      name = longNames.toString('utf8', at, end === -1 ? longNames.length : end);
    } else if (name.endsWith('/')) name = name.slice(0, -1); // GNU: names end with a slash
    if (ctx.stopped) break;
    const sink = ctx.member(cleanMemberName(name));
    if (sink === null) break;
    ctx.copy(sink, b.subarray(start, start + length));
    sink.end();
  }
  return {};
}
