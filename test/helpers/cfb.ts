/**
 * A minimal Compound File Binary writer for tests ([MS-CFB] version 3, 512-byte sectors):
 * storages and streams, streams under 4096 bytes in the mini stream (64-byte mini sectors,
 * written in reverse order when `fragment` is set so their chains jump around as real files'
 * do), larger ones in regular sectors. What Word, Outlook and msibuild write is read the same
 * way; Python's olefile reads these files too (the tests check it).
 */

export type CfbNode = { readonly name: string; readonly data: Buffer } | { readonly name: string; readonly children: readonly CfbNode[] };

const SECTOR = 512;
const MINI = 64;
const CUTOFF = 4096;
const END = 0xfffffffe;
const FREE = 0xffffffff;
const NOSTREAM = 0xffffffff;

export function cfb(root: readonly CfbNode[], opts: { fragment?: boolean } = {}): Buffer {
  // Flatten: entry 0 is the root; each storage's children form a chain through `right`.
  const entries: Array<{ name: string; type: number; data?: Buffer; child: number; right: number; start: number; size: number }> = [
    { name: 'Root Entry', type: 5, child: NOSTREAM, right: NOSTREAM, start: END, size: 0 },
  ];
  const add = (nodes: readonly CfbNode[], parent: number): void => {
    let prev = -1;
    for (const n of nodes) {
      const id = entries.length;
      entries.push({ name: n.name, type: 'data' in n ? 2 : 1, data: 'data' in n ? n.data : undefined, child: NOSTREAM, right: NOSTREAM, start: END, size: 'data' in n ? n.data.length : 0 });
      if (prev === -1) entries[parent]!.child = id;
      else entries[prev]!.right = id;
      prev = id;
      if (!('data' in n)) add(n.children, id);
    }
  };
  add(root, 0);

  // Mini stream: small streams in 64-byte mini sectors.
  const small = entries.filter((e) => e.type === 2 && e.size < CUTOFF && e.size > 0);
  const miniSectorsOf = small.map((e) => Math.ceil(e.size / MINI));
  const totalMini = miniSectorsOf.reduce((a, b) => a + b, 0);
  const order = [...Array(totalMini).keys()];
  if (opts.fragment) order.reverse();
  const miniStream = Buffer.alloc(totalMini * MINI);
  const miniFat = new Array<number>(totalMini).fill(FREE);
  let k = 0;
  small.forEach((e, i) => {
    const ids = order.slice(k, k + miniSectorsOf[i]!);
    k += miniSectorsOf[i]!;
    ids.forEach((id, j) => {
      e.data!.copy(miniStream, id * MINI, j * MINI, Math.min(e.size, (j + 1) * MINI));
      miniFat[id] = j + 1 < ids.length ? ids[j + 1]! : END;
    });
    e.start = ids[0]!;
  });

  // Regular sectors: FAT first, then directory, mini FAT, mini stream, big streams.
  const sectors: Buffer[] = [];
  const fat: number[] = [];
  const place = (bytes: Buffer): number => {
    const n = Math.max(1, Math.ceil(bytes.length / SECTOR));
    const start = sectors.length;
    for (let i = 0; i < n; i++) {
      const s = Buffer.alloc(SECTOR);
      bytes.copy(s, 0, i * SECTOR, (i + 1) * SECTOR);
      sectors.push(s);
      fat.push(i + 1 < n ? start + i + 1 : END);
    }
    return start;
  };
  const fatSectors = 1; // enough for these small test files (128 sectors)
  for (let i = 0; i < fatSectors; i++) {
    sectors.push(Buffer.alloc(SECTOR));
    fat.push(0xfffffffd); // FATSECT
  }
  const dirBytes = Buffer.alloc(Math.ceil(entries.length / 4) * SECTOR);
  const dirStart = place(dirBytes); // filled in below, once starts are known
  const miniFatBytes = Buffer.alloc(Math.max(4, miniFat.length * 4));
  miniFat.forEach((v, i) => miniFatBytes.writeUInt32LE(v, i * 4));
  const miniFatStart = totalMini ? place(miniFatBytes) : END;
  if (totalMini) {
    entries[0]!.start = place(miniStream);
    entries[0]!.size = miniStream.length;
  }
  for (const e of entries) if (e.type === 2 && e.size >= CUTOFF) e.start = place(e.data!);
  if (fat.length > SECTOR / 4) throw new Error('test CFB too large for one FAT sector');
  entries.forEach((e, i) => {
    const at = i * 128;
    const name = Buffer.from(`${e.name}\0`, 'utf16le');
    name.copy(dirBytes, at, 0, Math.min(64, name.length));
    dirBytes.writeUInt16LE(Math.min(64, name.length), at + 0x40);
    dirBytes[at + 0x42] = e.type;
    dirBytes[at + 0x43] = 1; // black
    dirBytes.writeUInt32LE(NOSTREAM, at + 0x44);
    dirBytes.writeUInt32LE(e.right, at + 0x48);
    dirBytes.writeUInt32LE(e.child, at + 0x4c);
    dirBytes.writeUInt32LE(e.type === 1 ? 0 : e.start, at + 0x74);
    dirBytes.writeUInt32LE(e.size, at + 0x78);
  });
  for (let i = entries.length; i < dirBytes.length / 128; i++) {
    dirBytes.writeUInt32LE(NOSTREAM, i * 128 + 0x44);
    dirBytes.writeUInt32LE(NOSTREAM, i * 128 + 0x48);
    dirBytes.writeUInt32LE(NOSTREAM, i * 128 + 0x4c);
  }
  for (let i = 0; i < dirBytes.length / SECTOR; i++) dirBytes.copy(sectors[dirStart + i]!, 0, i * SECTOR, (i + 1) * SECTOR);
  const fatBytes = sectors[0]!;
  fatBytes.fill(0xff);
  fat.forEach((v, i) => fatBytes.writeUInt32LE(v, i * 4));

  const header = Buffer.alloc(SECTOR);
  Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]).copy(header, 0);
  header.writeUInt16LE(0x3e, 0x18);
  header.writeUInt16LE(3, 0x1a);
  header.writeUInt16LE(0xfffe, 0x1c);
  header.writeUInt16LE(9, 0x1e);
  header.writeUInt16LE(6, 0x20);
  header.writeUInt32LE(fatSectors, 0x2c);
  header.writeUInt32LE(dirStart, 0x30);
  header.writeUInt32LE(CUTOFF, 0x38);
  header.writeUInt32LE(miniFatStart, 0x3c);
  header.writeUInt32LE(totalMini ? Math.ceil(miniFatBytes.length / SECTOR) : 0, 0x40);
  header.writeUInt32LE(END, 0x44);
  header.writeUInt32LE(0, 0x48);
  header.fill(0xff, 0x4c);
  header.writeUInt32LE(0, 0x4c); // the FAT is sector 0
  return Buffer.concat([header, ...sectors]);
}

/** An OLE Package stream (`\x01Ole10Native`) holding `data` as the file `name`. */
export function ole10Native(name: string, data: Buffer): Buffer {
  const label = Buffer.from(`${name}\0`, 'latin1');
  const path = Buffer.from(`C:\\Users\\u\\${name}\0`, 'latin1');
  const tmp = Buffer.from(`C:\\Temp\\${name}\0`, 'latin1');
  const body = Buffer.concat([
    Buffer.from([2, 0]), label, path, Buffer.from([0, 0, 3, 0]),
    u32(tmp.length), tmp, u32(data.length), data,
  ]);
  return Buffer.concat([u32(body.length), body]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
};
