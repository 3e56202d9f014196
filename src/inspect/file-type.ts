/**
 * File type identification by content, never by name. The `file-type` library (well kept,
 * ~150 magic formats, OOXML sub-types such as docm/xlsm) decides what it knows; this module
 * adds what a mail gateway needs and it lacks or names too coarsely: PE split into exe/dll,
 * OLE2 into doc/xls/ppt/msi/msg (with a macro flag), disk images (ISO, IMG, VHD/VHDX),
 * scripts (JS, VBS, PowerShell, HTA, batch), HTML, Internet shortcuts, and PDF whose header is
 * not at byte 0 (readers accept it anywhere in the first 1024 bytes: a known evasion).
 *
 * The vocabulary is file-type's extensions (`exe`, `zip`, `docm`, `pdf`, …) plus our own
 * (`dll`, `msi`, `doc`, `xls`, `ppt`, `msg`, `iso`, `img`, `vhd`, `vhdx`, `js`, `vbs`, `ps1`,
 * `hta`, `bat`, `html`, `url`, `library-ms`, `text`, `binary`, `empty`); archive readers may
 * later refine a type to `encrypted-zip`, `encrypted-rar`, `encrypted-7z`.
 */

import { ONENOTE_MAGIC } from './archive/onenote.ts';
import { isDmg } from './archive/via-seven-zip.ts';
import { fileTypeFromBuffer } from 'file-type';
import { decodedHead, textEncodingOf } from './decode/transcode.ts';

/** Bytes of a file's start kept for identification (ISO 9660's marker is at 32 KiB + 1). */
export const SNIFF_BYTES = 36 * 1024;
/** Bytes of a file's end kept for identification (a fixed VHD has its footer there). */
export const TAIL_BYTES = 512;
/** What file-type is given: its own documented minimum for reliable detection. */
const LIBRARY_BYTES = 4100;

export interface Identity {
  readonly type: string;
  /** Facts found while identifying: `macros` (an Office document with a VBA project). */
  readonly flags: readonly string[];
}

/** Whether `magic` (a latin1 string or bytes; at most a few bytes) is at `at`: no allocation. */
const has = (b: Buffer, magic: string | readonly number[], at = 0): boolean => {
  const n = magic.length;
  if (b.length < at + n) return false;
  for (let i = 0; i < n; i++) {
    const m = typeof magic === 'string' ? magic.charCodeAt(i) : magic[i]!;
    if (b[at + i] !== m) return false;
  }
  return true;
};

/**
 * Identify a file from its first SNIFF_BYTES (`head`), its last TAIL_BYTES (`tail`) and, for
 * containers the inspector keeps whole, all of it (`whole`, so OLE2 directories and OOXML parts
 * beyond the head are seen).
 */
export async function identify(head: Buffer, tail: Buffer, whole: Buffer | null = null): Promise<Identity> {
  if (head.length === 0) return { type: 'empty', flags: [] };
  const own = identifyBinary(head, tail, whole);
  if (own) return own;
  // Text in UTF-16/32 (a byte-order mark, or a NUL after every ASCII letter): typed by what it
  // says, as Windows reads it (a UTF-16 .vbs or .hta runs), not as the audio or binary data
  // its first bytes resemble (FF FE is also an MPEG audio frame header).
  const wide = textEncodingOf(head, null);
  if (wide !== null && wide !== 'utf-7') {
    const text = decodedHead(head, wide);
    if (isTextLike(text)) return { type: identifyText(text), flags: [] };
  }
  if (!isTextLike(head)) {
    const lib = await fileTypeFromBuffer(whole ?? head.subarray(0, LIBRARY_BYTES)).catch(() => undefined);
    if (lib) return { type: lib.ext, flags: /m$/.test(lib.ext) && OOXML_MACRO.has(lib.ext) ? ['macros'] : [] };
    return { type: 'binary', flags: [] };
  }
  return { type: identifyText(head), flags: [] };
}

const OOXML_MACRO = new Set(['docm', 'dotm', 'xlsm', 'xltm', 'pptm', 'potm', 'ppsm']);

function identifyBinary(head: Buffer, tail: Buffer, whole: Buffer | null): Identity | null {
  const plain = (type: string): Identity => ({ type, flags: [] });
  if (has(head, 'MZ')) return plain(peKind(head));
  if (has(head, [0x7f, 0x45, 0x4c, 0x46])) return plain('elf');
  for (const m of [[0xfe, 0xed, 0xfa, 0xce], [0xfe, 0xed, 0xfa, 0xcf], [0xce, 0xfa, 0xed, 0xfe], [0xcf, 0xfa, 0xed, 0xfe]]) {
    if (has(head, m)) return plain('macho');
  }
  if (has(head, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])) return oleKind(whole ?? head);
  if (has(head, [0x78, 0x9f, 0x3e, 0x22])) return plain('tnef');
  if (head.subarray(0, ONENOTE_MAGIC.length).equals(ONENOTE_MAGIC)) return plain('one'); // OneNote section
  if (has(head, [0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0])) return plain('lnk');
  if (has(head, 'vhdxfile')) return plain('vhdx');
  if (has(head, 'conectix') || has(tail, 'conectix', Math.max(0, tail.length - 512))) return plain('vhd');
  if (isDmg(whole ?? tail)) return plain('dmg');
  if (has(head, 'CD001', 0x8001) || has(head, 'BEA01', 0x8001) || has(head, 'CD001', 0x9001)) return plain('iso');
  const pdfAt = head.subarray(0, 1024).indexOf('%PDF-');
  if (pdfAt !== -1) return plain('pdf');
  // A FAT or NTFS volume boot sector: a raw disk image (.img) that Windows mounts on a click.
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa &&
      (has(head, 'FAT12', 54) || has(head, 'FAT16', 54) || has(head, 'FAT32', 82) || has(head, 'NTFS    ', 3))) return plain('img');
  return null;
}

/** `MZ` with a PE header: DLL if IMAGE_FILE_DLL is set; a bare MZ is a DOS executable. */
function peKind(head: Buffer): string {
  if (head.length < 0x40) return 'exe';
  const pe = head.readUInt32LE(0x3c);
  if (pe + 24 > head.length || !has(head, 'PE\0\0', pe)) return 'exe';
  return (head.readUInt16LE(pe + 22) & 0x2000) !== 0 ? 'dll' : 'exe';
}

const MSI_CLSID = Buffer.from([0x84, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46]);
const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const OLE_STREAMS: ReadonlyArray<readonly [string, Buffer]> = [
  ['doc', utf16('WordDocument')],
  ['xls', utf16('Workbook')],
  ['xls', utf16('Book\0')],
  ['ppt', utf16('PowerPoint Document')],
  ['msg', utf16('__substg1.0_')],
];
const VBA_MARKERS = [utf16('_VBA_PROJECT'), utf16('VBA\0'), utf16('Macros\0')];

/**
 * OLE2 compound file: which application wrote it, from the root entry's CLSID (MSI) or the
 * directory's stream names, and whether it holds a VBA project. Directory entries are found by
 * their UTF-16 names anywhere in the bytes (bounded: the inspector keeps containers up to a
 * limit), which also works when the FAT chain is damaged on purpose.
 */
function oleKind(bytes: Buffer): Identity {
  const flags = VBA_MARKERS.some((m) => bytes.indexOf(m) !== -1) ? ['macros'] : [];
  if (bytes.length >= 0x34) {
    const shift = bytes.readUInt16LE(0x1e);
    const dirSector = bytes.readInt32LE(0x30);
    const rootAt = shift >= 7 && shift <= 16 && dirSector >= 0 ? (dirSector + 1) * (1 << shift) : -1;
    if (rootAt >= 0 && rootAt + 0x60 <= bytes.length && bytes.compare(MSI_CLSID, 0, 16, rootAt + 0x50, rootAt + 0x60) === 0) {
      return { type: 'msi', flags };
    }
  }
  for (const [type, name] of OLE_STREAMS) if (bytes.indexOf(name) !== -1) return { type, flags };
  return { type: 'cfb', flags };
}

/** Text if no NUL and few control bytes in the first 4 KiB (bounded work per object). */
export function isTextLike(head: Buffer): boolean {
  const sample = head.subarray(0, 4096);
  if (sample.indexOf(0) !== -1) return false;
  // Control bytes counted with native searches, one per byte value (text has none or few).
  const limit = sample.length / 100;
  let controls = 0;
  for (const c of CONTROL_BYTES) {
    for (let at = sample.indexOf(c); at !== -1; at = sample.indexOf(c, at + 1)) {
      if (++controls > limit) return false;
    }
  }
  return true;
}

/** Bytes below 0x20 that text does not contain (all but TAB, LF, VT, FF, CR); NUL is checked first. */
const CONTROL_BYTES: readonly number[] = Array.from({ length: 0x20 }, (_, i) => i).filter((i) => i !== 0 && (i < 0x09 || i > 0x0d));

/**
 * Scripts and markup by their content, from the most specific. The markers are what malicious
 * scripts in mail cannot avoid (the interpreter's objects and entry points), not style, so
 * prose does not match. Markers are searched in the lower-cased text with indexOf (native);
 * the two structural patterns of JavaScript only run on text that has `;` or `{`.
 */
const TEXT_KINDS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['hta', ['<hta:application']],
  ['library-ms', ['<librarydescription', '<searchconnectordescription']],
  ['url', ['[internetshortcut]', '[{000214a0-0000-0000-c000-000000000046}]']],
  ['html', ['<!doctype html', '<html', '<head', '<body', '<script', '<iframe', '<form', '<meta http-equiv']],
  ['svg', ['<svg']],
  ['ps1', ['invoke-expression', 'iex(', 'iex (', 'net.webclient', 'invoke-webrequest', 'downloadstring(', 'set-executionpolicy', 'frombase64string', 'start-process', '-encodedcommand', '$env:']],
  ['js', ['new activexobject(', 'eval(', 'string.fromcharcode(', 'document.write(']],
  ['vbs', ['wscript.shell', 'wscript.createobject', 'wscript.echo', 'wscript.sleep', 'createobject("', 'on error resume next', 'end sub', 'end function']],
  ['bat', ['@echo off', '%comspec%', 'cmd /c', 'cmd.exe /c', 'cmd /k', 'cmd.exe /k', 'setlocal']],
];
const JS_STRUCTURE = /\b(var|let|const)\s+[\w$]+\s*=[^\n]*;|\bfunction\s*[\w$]*\s*\([^)]*\)\s*\{/;

/** Text examined for script and markup markers: enough for a script's first statements. */
const TEXT_SNIFF = 4096;

/** The type of a text file from its first bytes (scripts, markup, shortcuts), or 'text'. */
export function identifyText(head: Buffer): string {
  const n = Math.min(head.length, TEXT_SNIFF);
  // The same bytes are often asked twice in a row (the inspector, then the analysis engine;
  // a single-part message and its part): compared natively with a copy of the last ones
  // (a copy: a caller may reuse its buffer) before any string is made.
  if (n === lastLength && lastBytes.compare(head, 0, n, 0, n) === 0) return lastType;
  head.copy(lastBytes, 0, 0, n);
  lastLength = n;
  return (lastType = textKind(head.toString('latin1', 0, n)));
}

/** A copy of the first bytes last typed (lastLength of them; -1: none yet) and their type. */
const lastBytes = Buffer.alloc(TEXT_SNIFF);
let lastLength = -1;
let lastType = 'text';

/** Per anchor character of ANCHORS: unknown (-1), absent (0) or present (1) in the text at hand. */
const anchorSeen = new Int8Array(16);

function textKind(text: string): string {
  const lower = text.toLowerCase();
  // Each marker is looked for only if its rarest character is in the text at all: one native
  // search per anchor character instead of one per marker (prose has few of them).
  anchorSeen.fill(-1);
  const anchored = (anchor: number): boolean => {
    if (anchor < 0) return true;
    if (anchorSeen[anchor] === -1) anchorSeen[anchor] = lower.includes(ANCHORS[anchor]!) ? 1 : 0;
    return anchorSeen[anchor] === 1;
  };
  for (const [type, markers] of TEXT_MARKERS) {
    for (const [m, anchor] of markers) if (anchored(anchor) && lower.includes(m)) return type;
  }
  if ((text.includes(';') || text.includes('{')) && JS_STRUCTURE.test(text)) return 'js';
  if (/^\s*(?:<\?xml\b|<xdp:xdp\b)/.test(text)) return 'xml'; // an XDP may omit the declaration
  if (/^\s*\{\\rt/.test(text)) return 'rtf';
  return 'text';
}

/** Anchor characters, rarest in prose first. */
const ANCHORS = '<[$@%"(:/-.';
/** TEXT_KINDS with each marker's anchor: the index in ANCHORS of its first character found there, else -1. */
const TEXT_MARKERS: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, number]>]> = TEXT_KINDS.map(([type, markers]) => [
  type,
  markers.map((m) => [m, [...ANCHORS].findIndex((c) => m.includes(c))] as const),
]);
