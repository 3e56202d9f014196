/**
 * BinHex 4.0 inside text (`(This file must be converted with BinHex 4.0)` then `:…:`), the
 * classic Mac encoding mail clients and MIME-tools still decode (application/mac-binhex40):
 * found in any chunking; the data fork and the resource fork become files of their own.
 *
 * Decoding (RFC 1741): 6 bits per character from BinHex's 64-character alphabet (whitespace
 * ignored), then run-length expansion (0x90 n repeats the previous byte n − 1 more times;
 * 0x90 0 is a literal 0x90), then a header (name, type, creator, flags, fork lengths, CRC),
 * the data fork and its CRC, the resource fork and its CRC. CRCs are not checked: a receiver
 * that ignores them would run what we skipped. Only the header is buffered (at most 86 bytes).
 */

import type { FileSink } from './yenc.ts';

const MARKER_BYTES = Buffer.from('(This file must be converted with BinHex', 'latin1');
const ALPHABET = '!"#$%&\'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr';
const VALUE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;
/** Longest text searched for the marker before giving up on this object (it is at the top). */
const MAX_SEARCH = 1024 * 1024;

type State = 'search' | 'colon' | 'data' | 'done';

export class BinHexExtractor {
  #state: State;
  #searched = 0;
  #carry: Buffer = Buffer.alloc(0);
  // 6-bit decoding
  #bits = 0;
  #nbits = 0;
  // run-length expansion
  #last = -1;
  #marker = false;
  // fork parsing
  #header: number[] = [];
  #dataLeft = -1;
  #crcLeft = 0;
  #rsrcLeft = -1;
  #phase: 'header' | 'data' | 'crc1' | 'rsrc' | 'crc2' | 'end' = 'header';
  #name = 'binhex';
  #sink: FileSink | null = null;
  #out: number[] = [];

  /** `atStart`: the object is declared BinHex (application/mac-binhex40): no marker line needed. */
  constructor(private readonly onFile: (name: string) => FileSink, atStart = false) {
    this.#state = atStart ? 'colon' : 'search';
  }

  write(chunk: Buffer): void {
    let pos = 0;
    if (this.#state === 'search') {
      if (this.#searched > MAX_SEARCH) return;
      this.#searched += chunk.length;
      // The marker inside this chunk, or straddling the end of the last one.
      let after = -1;
      const at = chunk.indexOf(MARKER_BYTES);
      if (at !== -1) after = at + MARKER_BYTES.length;
      else if (this.#carry.length) {
        const joined = Buffer.concat([this.#carry, chunk.subarray(0, MARKER_BYTES.length)]);
        const j = joined.indexOf(MARKER_BYTES);
        if (j !== -1) after = j + MARKER_BYTES.length - this.#carry.length;
      }
      if (after === -1) {
        this.#carry = Buffer.from(chunk.subarray(Math.max(0, chunk.length - MARKER_BYTES.length + 1)));
        return;
      }
      this.#carry = Buffer.alloc(0);
      this.#state = 'colon';
      pos = after;
    }
    if (this.#state === 'colon') {
      const colon = chunk.indexOf(0x3a, pos);
      if (colon === -1) return;
      this.#state = 'data';
      pos = colon + 1;
    }
    if (this.#state !== 'data') return;
    for (let i = pos; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x3a) {
        this.#finish();
        return;
      }
      const v = VALUE[c]!;
      if (v < 0) continue; // line ends and other whitespace
      this.#bits = (this.#bits << 6) | v;
      this.#nbits += 6;
      if (this.#nbits >= 8) {
        this.#nbits -= 8;
        this.#rle((this.#bits >> this.#nbits) & 255);
        this.#bits &= (1 << this.#nbits) - 1;
      }
    }
    this.#flush();
  }

  end(): void {
    if (this.#state === 'data') this.#finish();
  }

  #rle(b: number): void {
    if (this.#marker) {
      this.#marker = false;
      if (b === 0) {
        this.#emit(0x90);
        this.#last = 0x90;
      } else for (let k = 1; k < b; k++) this.#emit(this.#last);
      return;
    }
    if (b === 0x90) {
      this.#marker = true;
      return;
    }
    this.#emit(b);
    this.#last = b;
  }

  #emit(b: number): void {
    switch (this.#phase) {
      case 'header': {
        this.#header.push(b);
        const n = this.#header[0]!;
        if (this.#header.length === 1 + n + 1 + 4 + 4 + 2 + 4 + 4 + 2) {
          const h = Buffer.from(this.#header);
          this.#name = h.toString('latin1', 1, 1 + n) || 'binhex';
          this.#dataLeft = h.readUInt32BE(1 + n + 11);
          this.#rsrcLeft = h.readUInt32BE(1 + n + 15);
          this.#phase = 'data';
          this.#sink = this.onFile(this.#name);
          if (this.#dataLeft === 0) this.#next();
        }
        return;
      }
      case 'data':
      case 'rsrc':
        this.#out.push(b);
        if (this.#out.length >= 4096) this.#flush();
        if (this.#phase === 'data' ? --this.#dataLeft === 0 : --this.#rsrcLeft === 0) this.#next();
        return;
      case 'crc1':
      case 'crc2':
        if (--this.#crcLeft === 0) this.#next();
        return;
      case 'end':
        return;
    }
  }

  /** The current fork or CRC is complete: on to the next. */
  #next(): void {
    this.#flush();
    if (this.#phase === 'data') {
      this.#sink?.end();
      this.#sink = null;
      this.#phase = 'crc1';
      this.#crcLeft = 2;
    } else if (this.#phase === 'crc1') {
      this.#phase = this.#rsrcLeft > 0 ? 'rsrc' : 'end';
      if (this.#phase === 'rsrc') this.#sink = this.onFile(`${this.#name}/rsrc`);
    } else if (this.#phase === 'rsrc') {
      this.#sink?.end();
      this.#sink = null;
      this.#phase = 'crc2';
      this.#crcLeft = 2;
    } else this.#phase = 'end';
  }

  #flush(): void {
    if (this.#out.length && this.#sink) this.#sink.write(Buffer.from(this.#out));
    this.#out = [];
  }

  /** The closing colon or the end of text: what was decoded so far is the file. */
  #finish(): void {
    this.#flush();
    this.#sink?.end();
    this.#sink = null;
    this.#state = 'done';
  }
}
