/** Feed helpers: the same bytes at every split point, or in random chunk sizes. */

export function* splitsOf(buf: Buffer): Generator<Buffer[]> {
  yield [buf];
  for (let i = 1; i < buf.length; i++) yield [buf.subarray(0, i), buf.subarray(i)];
}

export function byteByByte(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1));
  return out;
}

/** Deterministic pseudo-random chunking (seeded), chunk sizes 1..max. */
export function randomChunks(buf: Buffer, seed: number, max = 64): Buffer[] {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const n = 1 + Math.floor(next() * max);
    out.push(buf.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}
