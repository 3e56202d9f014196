/**
 * Character references (`&#100;`, `&#x64;`, `&amp;`) decoded: numeric ones always, named ones
 * from the table given — XML's five (and `nbsp`) for document text, HTML's names of the URI
 * characters for an attribute a browser follows. HTML also takes a reference without its
 * `;` (`&#100ata:` is `data:` to a browser); XML requires it.
 */

export function decodeCharRefs(s: string, named: Readonly<Record<string, string>>, semicolonOptional: boolean): string {
  if (!s.includes('&')) return s;
  return s.replace(semicolonOptional ? LENIENT : STRICT, (ref, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name !== undefined) return named[name] ?? ref;
    const cp = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : ref;
  });
}

const STRICT = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z]{2,8}));/g;
const LENIENT = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z]{2,8}));?/g;
