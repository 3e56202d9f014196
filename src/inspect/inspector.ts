/**
 * The inspector: one message in, findings out. It reads the content once, as it streams, and
 * fans it out to the engines as objects: the raw message, every decoded MIME leaf, every
 * uuencoded file inside a text part, and — once the message has ended — every member of every
 * archive among them, to any depth the limits allow.
 *
 * Contract: `begin()` returns a MessageScan; `write` it the dot-unstuffed content in any
 * chunking (synchronously: the CPU cost is paid where the bytes arrive, so backpressure on the
 * client covers inspection too); `end(deadlineMs)` resolves with all findings, files and
 * anomaly events, or rejects with a typed error (engine failure, deadline) that the policy
 * turns into its on-error action. It never touches a socket.
 *
 * Memory: per object in flight, its first SNIFF_BYTES and last TAIL_BYTES; containers (zip,
 * gzip, tar, TNEF, rar, 7z, OLE2) are kept whole up to ArchiveLimits.maxContainerBytes — for
 * all containers of a message together, since nested ones wait for their turn — so they
 * can be unpacked from their central directory; members stream through zlib.
 */

import { isDmg } from './archive/via-seven-zip.ts';
import { isRarVolumeChain } from './archive/rar.ts';
import { createHash, type Hash } from 'node:crypto';
import { describeError, ScanTimeoutError } from '../errors.ts';
import type { AnomalyEvent, AnomalyName } from '../events.ts';
import {
  ArchiveBudget,
  CONTAINER_TYPES,
  type ArchiveLimits,
  type ContainerReaders,
  DEFAULT_ARCHIVE_LIMITS,
  tooLargeMatters,
  zipReadingToo,
  inflateInto,
  looksLikeContainer,
  type MemberSink,
  readerFor,
  ZIP_BY_SEVEN_ZIP,
  type UnpackContext,
} from './archive/unpack.ts';
import { passwordCandidates } from './archive/zipcrypto.ts';
import type { Engine, EngineScan } from './engines/engine.ts';
import { fileFlags, typeForWindows } from './file-flags.ts';
import { type Identity, identify, SNIFF_BYTES, TAIL_BYTES } from './file-type.ts';
import { TextTranscoder } from './decode/transcode.ts';
import { innerObjects } from './inner-objects.ts';
import { DEFAULT_MIME_LIMITS, type LeafInfo, type LeafSink, type MimeLimits, MimeWalker } from './mime/walker.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH, type ScanError, type ScanResult } from './types.ts';

export interface InspectorOptions {
  readonly engines: readonly Engine[];
  readonly mime?: MimeLimits;
  readonly archives?: ArchiveLimits;
  /** Readers for container types beyond the built-in ones (7z through 7-Zip). */
  readonly readers?: ContainerReaders;
}

export class Inspector {
  constructor(private readonly opts: InspectorOptions) {}

  begin(): MessageScan {
    return new MessageScan(this.opts.engines, this.opts.mime ?? DEFAULT_MIME_LIMITS, this.opts.archives ?? DEFAULT_ARCHIVE_LIMITS, this.opts.readers ?? {});
  }

  /**
   * A file (not a message) as a stream: write its bytes, then `end(deadlineMs)`. Containers
   * in it are unpacked like attachments; `name` is its path in the findings.
   */
  beginFile(name: string): { write(chunk: Buffer): void; end(deadlineMs: number): Promise<ScanResult> } {
    const set = new ObjectSet(this.opts.engines, this.opts.mime ?? DEFAULT_MIME_LIMITS, this.opts.archives ?? DEFAULT_ARCHIVE_LIMITS, this.opts.readers ?? {});
    const sink = set.openObject({ path: name, name, contentType: null, encoding: null }, 0, 0);
    return {
      write: (chunk) => sink.write(chunk),
      end: (deadlineMs) => {
        sink.end();
        return withDeadline(set.finish(), deadlineMs);
      },
    };
  }

  /** Scan a whole buffer (files, .eml) with the same pipeline as the gateway. */
  async scanBuffer(bytes: Buffer, asMessage: boolean, deadlineMs: number, name: string | null = null): Promise<ScanResult> {
    if (asMessage) {
      const scan = this.begin();
      scan.write(bytes);
      return scan.end(deadlineMs);
    }
    const file = this.beginFile(name ?? 'file');
    file.write(bytes);
    return file.end(deadlineMs);
  }
}

/** Text kept from a message's text parts to find passwords for encrypted attachments. */
const MAX_TEXT_FOR_PASSWORDS = 64 * 1024;

/** Transfer encodings that count as a layer of encoding (multi-encoding file blocking). */
const ENCODED = new Set(['base64', 'quoted-printable', 'x-gzip64', 'gzip64', 'x-base64']);

/** A message's scan as the gateway uses it: bytes in as they arrive, the result at the end. */
export interface StreamScan {
  write(chunk: Buffer): void;
  end(deadlineMs: number): Promise<ScanResult>;
}

export class MessageScan implements StreamScan {
  readonly #set: ObjectSet;
  readonly #raw: ObjectScan;
  readonly #walker: MimeWalker;

  /** The start of every text part, where a password for an encrypted attachment would be. */
  readonly #text: Buffer[] = [];
  #textBytes = 0;
  #candidates: string[] | null = null;

  constructor(engines: readonly Engine[], mime: MimeLimits, archives: ArchiveLimits, readers: ContainerReaders) {
    this.#set = new ObjectSet(engines, mime, archives, readers, () => (this.#candidates ??= passwordCandidates(Buffer.concat(this.#text).toString('utf8'))));
    this.#raw = this.#set.open({ path: RAW_MESSAGE_PATH, name: null, contentType: 'message/rfc822', encoding: null }, 0, false, 0);
    this.#walker = new MimeWalker({ onLeaf: (info) => this.#leaf(info), onEvent: (e) => this.#set.events.push(e) }, mime);
  }

  /** A decoded leaf; the start of text parts is kept for passwords of encrypted attachments. */
  #leaf(info: LeafInfo): LeafSink {
    const layers = (info.outerLayers ?? 0) + (info.encoding !== null && ENCODED.has(info.encoding) ? 1 : 0);
    const leaf = this.#set.openObject(info, 0, layers);
    const textLike = info.contentType === null || info.contentType.startsWith('text/');
    if (!textLike) return leaf;
    return {
      write: (chunk) => {
        leaf.write(chunk);
        if (this.#textBytes < MAX_TEXT_FOR_PASSWORDS) {
          const piece = chunk.subarray(0, MAX_TEXT_FOR_PASSWORDS - this.#textBytes);
          this.#text.push(Buffer.from(piece));
          this.#textBytes += piece.length;
        }
      },
      end: () => leaf.end(),
    };
  }

  write(chunk: Buffer): void {
    this.#raw.write(chunk);
    this.#walker.write(chunk);
  }

  async end(deadlineMs: number): Promise<ScanResult> {
    this.#walker.end();
    this.#raw.end();
    return withDeadline(this.#set.finish(), deadlineMs);
  }
}

/**
 * The objects of one scan and the unpacking of its containers. Objects that are not
 * containers go to their engines' verdicts as soon as they end; containers wait for `finish`,
 * which unpacks them one at a time (members are appended and may be containers in turn).
 */
class ObjectSet {
  readonly objects: ObjectScan[] = [];
  readonly events: AnomalyEvent[] = [];
  /** Engines that failed on an object: the others' findings stand (the policy weighs both). */
  readonly errors: ScanError[] = [];
  readonly #budget: ArchiveBudget;
  /**
   * Container bytes held in memory for the whole message: an archive of archives keeps its
   * members until their turn to be unpacked, and all of them together stay within the limit.
   */
  readonly #kept: KeptBytes;

  constructor(
    private readonly engines: readonly Engine[],
    private readonly mime: MimeLimits,
    private readonly limits: ArchiveLimits,
    private readonly readers: ContainerReaders,
    private readonly passwords: () => readonly string[] = () => [],
  ) {
    this.#budget = new ArchiveBudget(limits, (name, where, detail) => this.event(name, where, detail));
    this.#kept = { bytes: 0, limit: limits.maxContainerBytes };
  }

  event(name: AnomalyName, where: string, detail?: string): void {
    this.events.push(detail === undefined ? { name, where } : { name, where, detail });
  }

  open(leaf: LeafInfo, depth: number, mayContain: boolean, layers: number): ObjectScan {
    const o = new ObjectScan(this.engines, leaf, depth, layers, mayContain ? this.#kept : null, this.errors);
    this.objects.push(o);
    return o;
  }

  /**
   * An object and the objects inside it that no container announces (files written as text,
   * messages whatever they are called): each found one is opened the same way, recursively.
   */
  openObject(leaf: LeafInfo, depth: number, layers: number): LeafSink {
    const o = this.open(leaf, depth, true, layers);
    // Text in UTF-16/32 or UTF-7: its decoded text is an object of its own, read like any text.
    const transcoder = new TextTranscoder(leaf.charset ?? null, (encoding) => {
      o.textEncoding = encoding;
      return this.openObject({ path: `${leaf.path}/(text)`, name: null, contentType: null, encoding: null, mimeDepth: leaf.mimeDepth ?? 0 }, depth, layers + 1);
    });
    const inner = innerObjects(
      leaf,
      (info, how) =>
        this.openObject(info, depth, layers + (how === 'text-encoding' ? 1 : (info.outerLayers ?? 0) + (info.encoding !== null && ENCODED.has(info.encoding) ? 1 : 0))),
      this.mime,
      (e) => this.events.push(e),
    );
    if (inner === null) {
      return {
        write: (chunk) => {
          o.write(chunk);
          transcoder.write(chunk);
        },
        end: () => {
          o.end();
          transcoder.end();
        },
      };
    }
    return {
      write: (chunk) => {
        o.write(chunk);
        transcoder.write(chunk);
        inner.write(chunk);
      },
      end: () => {
        // The decoded text ends first: the object's own verdicts then know it was decoded.
        transcoder.end();
        o.end();
        inner.end();
      },
    };
  }

  async finish(): Promise<ScanResult> {
    // Containers are unpacked in this order under one budget, and files are reported in it:
    // first an order of the content, not of the chunks the bytes came in.
    inContentOrder(this.objects);
    const volumes = this.#joinVolumes();
    for (let i = 0; i < this.objects.length; i++) {
      const o = this.objects[i]!;
      if (volumes.has(o)) {
        // A volume read as part of its joined archive: not unpacked alone (cut, it would only
        // be "corrupt"); typed and judged as the file it is.
        const piece = o.takeContainer();
        if (piece) o.settle(await identify(o.head, o.tail, piece));
        continue;
      }
      const appended = o.takeAppended();
      // A zip appended to a file that is no container: read if complete (embedded mode).
      if (appended !== null && !this.#budget.stopped) await this.#unpack(o, { type: 'appended', flags: [] }, appended);
      if (o.appendedTooLarge && o.tail.indexOf('PK\x05\x06', 0, 'latin1') !== -1) this.event('ARCHIVE_TOO_LARGE', o.path, `a zip appended to it, past the limit of ${this.limits.maxContainerBytes} bytes`);
      const whole = o.takeContainer();
      if (o.containerTooLarge && tooLargeMatters(o.head, o.tail)) this.event('ARCHIVE_TOO_LARGE', o.path, `limit ${this.limits.maxContainerBytes} bytes`);
      // A disk image recognised only by its trailer, after its bytes went by (not named .dmg):
      // never passed as if it had been opened.
      if (whole === null && !o.containerTooLarge && isDmg(o.tail)) this.event('ARCHIVE_UNSUPPORTED', o.path, 'an Apple disk image (UDIF), recognised by its trailer once its bytes had gone by (it is not named .dmg): not opened');
      if (whole === null) continue;
      const id = await identify(o.head, o.tail, whole);
      o.settle(await this.#unpack(o, id, whole));
    }
    const results = await Promise.all(this.objects.map((o) => o.result()));
    return { findings: dedupe(results.flat()), files: this.objects.map((o) => o.info!), events: this.events, errors: this.errors };
  }

  /**
   * Split archives (7-Zip's and HJSplit's `name.001`, `name.002`, …) and multi-volume RARs
   * (`name.part1.rar`, `name.part2.rar`, …, or `name.rar`, `name.r00`, …): volumes of one name
   * among the message's objects at one level, numbered from the first without a gap, are
   * joined in order into an object of their own, `FIRST/(joined)`, named `name` (`name.rar`) —
   * what 7-Zip or WinRAR opens when the user opens the first volume. RAR pieces must be RAR
   * volumes that say more follow (isRarVolumeChain). Returns the volumes that were joined.
   */
  #joinVolumes(): Set<ObjectScan> {
    const groups = new Map<string, Array<{ o: ObjectScan; n: number }>>();
    for (const o of this.objects) {
      const v = volumeOf(o.name);
      if (v === null || !o.isKept) continue;
      const key = `${o.depth}\0${o.path.slice(0, o.path.lastIndexOf('/'))}\0${v.rar ? v.base.toLowerCase() : v.base}\0${v.rar}`;
      (groups.get(key) ?? groups.set(key, []).get(key)!).push({ o, n: v.n });
    }
    const joined = new Set<ObjectScan>();
    for (const parts of groups.values()) {
      parts.sort((a, b) => a.n - b.n);
      if (parts.length < 2 || parts.some((p, i) => p.n !== i + 1)) continue;
      const first = parts[0]!.o;
      const { base, rar } = volumeOf(first.name)!;
      const bytes = parts.map((p) => p.o.keptBytes());
      if (bytes.some((b) => b === null)) continue;
      if (rar && !isRarVolumeChain(bytes as Buffer[])) continue;
      const sink = this.openObject({ path: `${first.path}/(joined)`, name: base, contentType: null, encoding: null }, first.depth, first.layers);
      for (const b of bytes) sink.write(b!);
      sink.end();
      this.event('ARCHIVE_VOLUMES_JOINED', first.path, `${parts.length} volumes of ${base}`);
      for (const p of parts) joined.add(p.o);
    }
    return joined;
  }

  /** Unpack one container; returns its identity, refined by what unpacking found. */
  async #unpack(o: ObjectScan, id: Identity, bytes: Buffer): Promise<Identity> {
    const reader = readerFor(id.type, bytes, this.readers);
    if (reader === null || this.#budget.stopped) return id;
    const where = o.depth === 0 && o.path !== o.name ? `${o.path}/${o.name ?? `(${id.type})`}` : o.path;
    if (o.depth >= this.limits.maxDepth) {
      this.event('ARCHIVE_DEPTH_EXCEEDED', where, `limit ${this.limits.maxDepth}`);
      return id;
    }
    this.#budget.start();
    const budget = this.#budget;
    let by = 'smtpwall';
    let members = 0;
    const eventsBefore = this.events.length;
    const ctx: UnpackContext = {
      where,
      name: o.name,
      embedded: !CONTAINER_TYPES.has(id.type),
      get stopped() {
        return budget.stopped;
      },
      member: (name) => {
        if (!budget.file(where)) return null;
        members++;
        return this.openObject({ path: `${where}/${name}`, name, contentType: null, encoding: null }, o.depth + 1, o.layers + 1);
      },
      openedBy: (how) => void (by = how),
      event: (name, detail) => this.event(name, where, detail),
      copy: (sink: MemberSink, data: Buffer) => {
        if (!budget.bytes(data.length, data.length, data.length, where)) return false;
        sink.write(data);
        return true;
      },
      inflate: (kind, packed, sink, used) => inflateInto(kind, packed, sink, budget, where, used),
      passwords: () => this.passwords(),
      zipBySevenZip: this.readers[ZIP_BY_SEVEN_ZIP],
    };
    const outcome = await reader(bytes, ctx);
    const beforeZip = members;
    await zipReadingToo(id.type, reader, bytes, ctx);
    const unsupported = this.events.slice(eventsBefore).some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && e.where === where);
    o.openedBy = `${beforeZip === 0 && unsupported ? 'recognised only' : by}${members > beforeZip ? ' + zip reading' : ''}`;
    return outcome.type ? { type: outcome.type, flags: id.flags } : id;
  }
}

const ZIP_LOCAL = Buffer.from('PK\x03\x04', 'latin1');

/**
 * A volume's place in a split archive, by its name: `invoice.zip.003` → { base: 'invoice.zip',
 * n: 3 } (7-Zip, HJSplit: the bytes cut in pieces); RAR's own volumes, `x.part2.rar` → n 2, and
 * the older `x.rar`, `x.r00`, `x.r01` → n 1, 2, 3, with base `x.rar` (`rar`: each piece must
 * then be a RAR volume, rar.ts isRarVolumeChain). null for other names.
 */
function volumeOf(name: string | null): { base: string; n: number; rar: boolean } | null {
  if (name === null) return null;
  let m = /^(.+)\.(\d{3})$/.exec(name);
  if (m) return { base: m[1]!, n: Number(m[2]), rar: false };
  m = /^(.+)\.part0*(\d{1,4})\.rar$/i.exec(name);
  if (m) return { base: `${m[1]!}.rar`, n: Number(m[2]), rar: true };
  m = /^(.+)\.r(\d\d)$/i.exec(name);
  if (m) return { base: `${m[1]!}.rar`, n: Number(m[2]) + 2, rar: true };
  m = /^(.+)\.rar$/i.exec(name);
  return m ? { base: name, n: 1, rar: true } : null;
}

/** Bytes of containers kept in memory, shared by the objects of one message. */
interface KeptBytes {
  bytes: number;
  readonly limit: number;
}

/** One object (raw message, decoded leaf, archive member): hashes, type, each engine's scan. */
class ObjectScan implements LeafSink {
  readonly #sha256: Hash = createHash('sha256');
  /** MD5 only when an engine matches MD5 hashes (ClamAV .hdb): it costs as much as SHA-256. */
  readonly #md5: Hash | null;
  readonly #scans: EngineScan[];
  readonly #engineNames: string[];
  #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer = Buffer.alloc(0);
  #size = 0;
  /** Chunks kept whole beyond the head: null once it is known not to be a container. */
  #keep: Buffer[] | null = [];
  #keptBytes = 0;
  #decided = false;
  containerTooLarge = false;
  /**
   * A file that is no container (an image, a program, a PDF past its first bytes) with a zip
   * local header later in it: from that header on its bytes are kept (within the message's
   * container budget), because a zip appended to a file is what unzip, Python's zipfile and
   * Java open (a "GIFAR"). Read at the end if a complete zip is there (ObjectSet.finish).
   */
  #appended: Buffer[] | null = null;
  #appendedBytes = 0;
  appendedTooLarge = false;
  /** Its text was decoded from UTF-16/32 or UTF-7 into `PATH/(text)` (decode/transcode.ts). */
  textEncoding: string | null = null;
  /** A container: what opened it (FileInfo.openedBy). */
  openedBy: string | null = null;
  #digests: { sha256: string; md5: string } | null = null;
  info: FileInfo | null = null;
  #result: Promise<Finding[]> | null = null;
  #settleContainer: ((id: Identity) => void) | null = null;

  constructor(
    engines: readonly Engine[],
    private readonly leaf: LeafInfo,
    readonly depth: number,
    readonly layers: number,
    /** The message's container budget; null: never kept as a container (the raw message). */
    private readonly kept: KeptBytes | null,
    /** Where an engine's failure on this object is recorded. */
    private readonly errors: ScanError[],
  ) {
    this.#engineNames = [];
    this.#scans = engines.filter((e) => e.wants?.(leaf.path) ?? true).map((e) => (this.#engineNames.push(e.name), e.open(leaf.path, [leaf.name, ...(leaf.otherNames ?? [])])));
    this.#md5 = engines.some((e) => e.needsMd5) ? createHash('md5') : null;
    if (kept === null) this.#keep = null;
  }

  get path(): string {
    return this.leaf.path;
  }
  get name(): string | null {
    return this.leaf.name;
  }
  get head(): Buffer {
    // Joined once and kept joined: the head is asked for several times (the container
    // decision, identification, the verdicts), and the pieces are this object's own copies.
    if (this.#head.length > 1) this.#head = [Buffer.concat(this.#head)];
    return this.#head[0] ?? Buffer.alloc(0);
  }
  get tail(): Buffer {
    return this.#tail;
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#size += chunk.length;
    this.#sha256.update(chunk);
    this.#md5?.update(chunk);
    let rest = chunk;
    if (this.#headBytes < SNIFF_BYTES) {
      const piece = chunk.subarray(0, SNIFF_BYTES - this.#headBytes);
      this.#head.push(Buffer.from(piece));
      this.#headBytes += piece.length;
      rest = chunk.subarray(piece.length);
    }
    if (!this.#decided && this.#headBytes >= SNIFF_BYTES) this.#decide();
    if (this.#keep === null && this.kept !== null && rest.length > 0 && !this.appendedTooLarge) this.#watchForZip(rest);
    if (this.#keep !== null && rest.length > 0) {
      if (this.kept!.bytes + rest.length > this.kept!.limit) {
        this.#release();
        this.containerTooLarge = true;
      } else {
        this.#keep.push(Buffer.from(rest));
        this.#keptBytes += rest.length;
        this.kept!.bytes += rest.length;
      }
    }
    this.#tail = chunk.length >= TAIL_BYTES ? Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES)) : Buffer.concat([this.#tail, chunk]).subarray(-TAIL_BYTES);
    for (const s of this.#scans) s.write(chunk);
  }

  /** Keep bytes from a zip local header on, once one appears (the seam of two chunks included). */
  #watchForZip(rest: Buffer): void {
    let from = -1;
    if (this.#appended === null) {
      from = rest.indexOf(ZIP_LOCAL);
      if (from === -1 && this.#tail.length >= 3) {
        const seam = Buffer.concat([this.#tail.subarray(-3), rest.subarray(0, 3)]);
        const s = seam.indexOf(ZIP_LOCAL);
        if (s !== -1) {
          this.#appended = [Buffer.from(seam.subarray(s, 3))];
          this.#appendedBytes = 3 - s;
          from = 0;
        }
      }
      if (from === -1) return;
      this.#appended ??= [];
    } else from = 0;
    const piece = rest.subarray(from);
    if (this.kept!.bytes + piece.length > this.kept!.limit) {
      this.kept!.bytes -= this.#appendedBytes;
      this.#appended = null;
      this.#appendedBytes = 0;
      this.appendedTooLarge = true;
      return;
    }
    this.#appended.push(Buffer.from(piece));
    this.#appendedBytes += piece.length;
    this.kept!.bytes += piece.length;
  }

  /** The bytes from a zip local header on (see #appended), once; null if none were seen. */
  takeAppended(): Buffer | null {
    const a = this.#appended;
    this.#appended = null;
    if (a === null) return null;
    this.kept!.bytes -= this.#appendedBytes;
    this.#appendedBytes = 0;
    return Buffer.concat(a);
  }

  #decide(): void {
    this.#decided = true;
    if (this.#keep === null) return;
    // A volume of a split archive (`x.zip.001`, `x.002`…) is kept whatever its first bytes:
    // only the first volume starts like an archive. (Every RAR volume starts with RAR's own
    // signature, so its name needs no such exception.)
    // An Apple disk image is known only by its trailer: a `.dmg` is kept to be read whole.
    if (!looksLikeContainer(this.head) && volumeOf(this.leaf.name)?.rar !== false && !/\.dmg$/i.test(this.leaf.name ?? '')) return this.#release();
    // Its head is part of what is kept: thousands of small nested containers count too.
    if (this.kept!.bytes + this.#headBytes > this.kept!.limit) {
      this.#release();
      this.containerTooLarge = true;
      return;
    }
    this.#keptBytes += this.#headBytes;
    this.kept!.bytes += this.#headBytes;
  }

  /** No longer kept as a container: its bytes leave the message's budget. */
  #release(): void {
    this.#keep = null;
    if (this.kept) this.kept.bytes -= this.#keptBytes;
    this.#keptBytes = 0;
  }

  end(): void {
    if (!this.#decided) this.#decide();
    this.#digests = { sha256: this.#sha256.digest('hex'), md5: this.#md5?.digest('hex') ?? '' };
    if (this.#keep === null) {
      this.#result = identify(this.head, this.#tail).then((id) => this.#verdicts(id));
    } else {
      this.#result = new Promise<Identity>((resolve) => (this.#settleContainer = resolve)).then((id) => this.#verdicts(id));
    }
    this.#result.catch(() => undefined); // observed in result(); never an unhandled rejection
  }

  /** Whether its bytes are kept (a container, or a volume of a split archive). */
  get isKept(): boolean {
    return this.#keep !== null;
  }

  /** The kept bytes, without giving them up (the volumes of a split archive, to join them). */
  keptBytes(): Buffer | null {
    return this.#keep === null ? null : Buffer.concat([...this.#head, ...this.#keep]);
  }

  /** The container's bytes, once, for unpacking (null if it is not kept as one). */
  takeContainer(): Buffer | null {
    if (this.#keep === null || this.#settleContainer === null) return null;
    const whole = Buffer.concat([...this.#head, ...this.#keep]);
    this.#keep = [];
    return whole;
  }

  /** A container's identity, known after unpacking: its engines' verdicts may now be had. */
  settle(id: Identity): void {
    this.#settleContainer?.(id);
    this.#settleContainer = null;
    this.#release();
  }

  #verdicts(id: Identity): Promise<Finding[]> {
    const info: FileInfo = {
      path: this.leaf.path,
      name: this.leaf.name,
      declaredType: this.leaf.contentType,
      // Text Windows runs by its name (a .js, a .hta) has the interpreter's type (file-flags.ts).
      detectedType: typeForWindows(id.type, [this.leaf.name, ...(this.leaf.otherNames ?? [])]),
      flags: [...new Set([...id.flags, ...[this.leaf.name, ...(this.leaf.otherNames ?? [])].flatMap((n) => fileFlags(n, this.leaf.contentType, id.type))])],
      ...(this.leaf.otherNames?.length ? { otherNames: this.leaf.otherNames } : {}),
      depth: this.depth,
      layers: this.layers,
      size: this.#size,
      sha256: this.#digests!.sha256,
      md5: this.#digests!.md5,
      encoding: this.leaf.encoding,
      ...(this.textEncoding ? { textEncoding: this.textEncoding } : {}),
      ...(this.openedBy ? { openedBy: this.openedBy } : {}),
    };
    this.info = info;
    this.#head = [];
    // One engine failing (clamd down) must not discard what the others found: its failure is
    // recorded and the policy applies on-error beside the other verdicts, most severe first.
    return Promise.allSettled(this.#scans.map((s) => s.end(info))).then((settled) => {
      const found: Finding[] = [];
      settled.forEach((r, i) => {
        if (r.status === 'fulfilled') found.push(...r.value);
        else this.errors.push({ engine: this.#engineNames[i] ?? '?', path: info.path, message: describeError(r.reason) });
      });
      return found;
    });
  }

  result(): Promise<Finding[]> {
    if (!this.#result) throw new Error('ObjectScan.result() before end()');
    return this.#result;
  }
}

/**
 * The objects seen while the message streamed, in an order of the content alone. The order in
 * which they opened depends on how the bytes were cut into chunks: the readings of an
 * ambiguous part are walked side by side, chunk by chunk, and an object found inside a text
 * (an embedded message, a uuencoded file) opens when its detector has seen enough, which
 * depends on where a chunk ends. So they are sorted by path: parents before children,
 * siblings by name (numbers by value, before names), and each part's first reading before its
 * others (`msg` before `msg~2`, whose objects follow). Archive members are opened after this,
 * container by container in this order.
 */
function inContentOrder(objects: ObjectScan[]): void {
  const keys = new Map(objects.map((o) => [o, o.path.split('/').map((seg) => seg.split('~'))]));
  objects.sort((a, b) => compareLists(keys.get(a)!, keys.get(b)!, (x, y) => compareLists(x, y, compareToken)));
}

function compareLists<T>(a: readonly T[], b: readonly T[], cmp: (x: T, y: T) => number): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = cmp(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length; // a prefix (a parent, a first reading) first
}

const DIGITS = /^\d+$/;

/** Numbers by value and before names; names by code unit. */
function compareToken(x: string, y: string): number {
  if (x === y) return 0;
  const nx = DIGITS.test(x);
  const ny = DIGITS.test(y);
  if (nx && ny) return Number(x) - Number(y) || (x < y ? -1 : 1);
  if (nx !== ny) return nx ? -1 : 1;
  return x < y ? -1 : 1;
}

/**
 * The same match is often seen at several levels: the raw message and a 7bit leaf, a zip and
 * the stored member inside it. Report each threat once per file, and at a container (or the
 * raw message) only when nothing inside it explains it: the most precise location is the
 * better explanation.
 */
function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  const explainedInside = (f: Finding): boolean =>
    findings.some(
      (g) => g !== f && g.engine === f.engine && g.threat === f.threat &&
        (f.file.path === RAW_MESSAGE_PATH ? g.file.path !== RAW_MESSAGE_PATH : g.file.path.startsWith(`${f.file.path}/`)),
    );
  return findings.filter((f) => {
    if (f.matches) return true; // data-filtering counts add up across files
    const key = `${f.engine}\0${f.threat}\0${f.file.path}`;
    if (seen.has(key) || explainedInside(f)) return false;
    seen.add(key);
    return true;
  });
}

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ScanTimeoutError('inspector', ms)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
