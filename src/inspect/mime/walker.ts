/**
 * The streaming MIME walker: from message bytes, in any chunking, to leaves (decoded parts)
 * and anomaly events, without holding the message in memory.
 *
 * Contract: `write` the message content (dot-unstuffed, CRLF or LF line ends), then `end`.
 * For every leaf the walker calls `onLeaf(info)` once and then the returned sink's `write`
 * with the decoded bytes and `end`. Multipart structure, message/rfc822 nesting and
 * transfer encodings are followed as a lenient mail client would. Limits (depth, part count,
 * header size) stop descending and raise an event; they never throw.
 *
 * Memory: one partial line (bounded by MAX_LINE_BYTES; longer lines are passed on in pieces,
 * since a piece past the bound cannot be a boundary), one header block per open part (bounded
 * by the header limit), and one decoder per open leaf.
 */

import type { AnomalyEvent, AnomalyName } from '../../events.ts';
import { Base64Decoder } from '../decode/base64.ts';
import { QuotedPrintableDecoder } from '../decode/quoted-printable.ts';
import { decodeEncodedWords, normaliseEncoding, parseHeaderBlock, parseStructured } from './headers.ts';

const LF = 10;
const CR = 13;
const DASH = 45;
/** Longest line kept whole; boundaries are at most 70 chars (RFC 2046 §5.1.1) plus padding. */
const MAX_LINE_BYTES = 8 * 1024;
const BOUNDARY_START = Buffer.from('\n--');

export interface MimeLimits {
  readonly maxDepth: number;
  readonly maxParts: number;
  readonly maxHeaderBytes: number;
}

export const DEFAULT_MIME_LIMITS: MimeLimits = { maxDepth: 20, maxParts: 1000, maxHeaderBytes: 64 * 1024 };

export interface LeafInfo {
  readonly path: string;
  readonly contentType: string | null;
  readonly name: string | null;
  readonly encoding: string | null;
  /** Transfer encodings around this part: messages (message/rfc822) that were themselves encoded. */
  readonly outerLayers?: number;
}

/** Where a walker starts: the top of a message, or a message embedded in an encoded part. */
interface WalkerRoot {
  readonly path: string;
  readonly depth: number;
  readonly outerLayers: number;
  /** Part count and events, shared by a message and the encoded messages inside it. */
  readonly shared: { parts: number; depthEventRaised: boolean; partsEventRaised: boolean };
}

export interface LeafSink {
  write(chunk: Buffer): void;
  end(): void;
}

export interface WalkerHandlers {
  onLeaf(info: LeafInfo): LeafSink;
  onEvent(event: AnomalyEvent): void;
}

type Frame = HeaderFrame | MultipartFrame | LeafFrame;

interface BaseFrame {
  readonly path: string;
  readonly depth: number;
}
interface HeaderFrame extends BaseFrame {
  kind: 'headers';
  lines: string[];
  bytes: number;
  overflow: boolean;
}
interface MultipartFrame extends BaseFrame {
  kind: 'multipart';
  readonly delimiter: Buffer; // "--" + boundary
  children: number;
  closed: boolean;
}
interface LeafFrame extends BaseFrame {
  kind: 'leaf';
  readonly decoder: BodyDecoder;
  pendingEol: Buffer | null;
}

interface BodyDecoder {
  /** Whether whole blocks of lines may be written at once (false: line by line). */
  readonly bulk: boolean;
  write(content: Buffer): void;
  eol(raw: Buffer): void;
  end(): void;
}

export class MimeWalker {
  #stack: Frame[] = [];
  #carry: Buffer | null = null;
  /** The previous piece was part of an over-long line: this one is not at a line start. */
  #midLine = false;
  readonly #root: WalkerRoot;

  constructor(
    private readonly handlers: WalkerHandlers,
    private readonly limits: MimeLimits = DEFAULT_MIME_LIMITS,
    root?: WalkerRoot,
  ) {
    this.#root = root ?? { path: 'msg', depth: 0, outerLayers: 0, shared: { parts: 1, depthEventRaised: false, partsEventRaised: false } };
    this.#stack.push(newHeaderFrame(this.#root.path, this.#root.depth));
  }

  write(chunk: Buffer): void {
    let buf = chunk;
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, chunk]);
      this.#carry = null;
    }
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      const top = this.#stack[this.#stack.length - 1]!;
      // Fast path: a run of lines inside a leaf that cannot contain a boundary goes in one piece.
      if (top.kind === 'leaf' && top.decoder.bulk && !this.#midLine && buf[pos] !== DASH) {
        const nextDash = buf.indexOf(BOUNDARY_START, pos);
        const blockEnd = nextDash === -1 ? buf.lastIndexOf(LF) : nextDash; // index of an LF
        if (blockEnd >= pos) {
          const contentEnd = blockEnd > pos && buf[blockEnd - 1] === CR ? blockEnd - 1 : blockEnd;
          this.#leafLine(top, buf.subarray(pos, contentEnd), buf.subarray(contentEnd, blockEnd + 1));
          pos = blockEnd + 1;
          continue;
        }
      }
      const lf = buf.indexOf(LF, pos);
      if (lf === -1) {
        if (len - pos > MAX_LINE_BYTES) {
          // Keep a trailing CR back so a CRLF split across chunks stays one line end.
          const cut = buf[len - 1] === CR ? len - 1 : len;
          this.#piece(buf.subarray(pos, cut));
          pos = cut;
        }
        if (pos < len) this.#carry = Buffer.from(buf.subarray(pos));
        return;
      }
      const contentEnd = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
      this.#line(buf.subarray(pos, contentEnd), buf.subarray(contentEnd, lf + 1));
      pos = lf + 1;
    }
  }

  end(): void {
    if (this.#carry) {
      this.#line(this.#carry, Buffer.alloc(0));
      this.#carry = null;
    }
    // A message that ends inside its header block has an empty body.
    while (this.#stack.length) {
      const top = this.#stack[this.#stack.length - 1]!;
      if (top.kind === 'headers') {
        this.#startBody(top);
        continue;
      }
      this.#pop(true);
    }
  }

  /** An over-long line's piece: content only, no line end yet. */
  #piece(content: Buffer): void {
    const top = this.#stack[this.#stack.length - 1]!;
    if (top.kind === 'leaf') {
      if (top.pendingEol && !this.#midLine) {
        top.decoder.eol(top.pendingEol);
        top.pendingEol = null;
      }
      top.decoder.write(content);
    } else if (top.kind === 'headers') {
      this.#headerLine(top, content.toString('latin1'));
    }
    this.#midLine = true;
  }

  #line(content: Buffer, eol: Buffer): void {
    const atLineStart = !this.#midLine;
    this.#midLine = false;
    if (atLineStart && content.length >= 2 && content[0] === DASH && content[1] === DASH && this.#boundary(content)) {
      return;
    }
    const top = this.#stack[this.#stack.length - 1]!;
    switch (top.kind) {
      case 'headers':
        if (atLineStart && content.length === 0) {
          this.#startBody(top);
          return;
        }
        if (atLineStart && !looksLikeHeader(content, top.lines.length > 0)) {
          // Body without a blank line after the headers: the headers ended here.
          this.#startBody(top);
          this.#line(content, eol);
          return;
        }
        this.#headerLine(top, content.toString('latin1'), !atLineStart);
        return;
      case 'multipart':
        return; // preamble or epilogue: not delivered as a part by mail clients
      case 'leaf':
        this.#leafLine(top, content, eol, !atLineStart);
        return;
    }
  }

  #leafLine(frame: LeafFrame, content: Buffer, eol: Buffer, continuation = false): void {
    if (frame.pendingEol && !continuation) frame.decoder.eol(frame.pendingEol);
    frame.pendingEol = null;
    if (content.length) frame.decoder.write(content);
    // RFC 2046 §5.1.1: the line end before a boundary belongs to the boundary, so hold it.
    if (eol.length) frame.pendingEol = eol;
  }

  #headerLine(frame: HeaderFrame, text: string, continuation = false): void {
    frame.bytes += text.length;
    if (frame.bytes > this.limits.maxHeaderBytes) {
      if (!frame.overflow) this.#event('MIME_HEADER_TOO_LONG', frame.path);
      frame.overflow = true;
      return;
    }
    if (continuation && frame.lines.length) frame.lines[frame.lines.length - 1] += text;
    else frame.lines.push(text);
  }

  /** A line starting with `--`: does it delimit an open multipart? */
  #boundary(content: Buffer): boolean {
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const f = this.#stack[i]!;
      if (f.kind !== 'multipart' || f.closed) continue;
      const d = f.delimiter;
      if (content.length < d.length || content.compare(d, 0, d.length, 0, d.length) !== 0) continue;
      const rest = content.toString('latin1', d.length).trimEnd();
      if (rest !== '' && rest !== '--') continue;
      while (this.#stack.length - 1 > i) this.#pop(true);
      if (rest === '--') {
        f.closed = true;
        return true;
      }
      f.children++;
      const shared = this.#root.shared;
      shared.parts++;
      if (shared.parts > this.limits.maxParts) {
        if (!shared.partsEventRaised) this.#event('MIME_PARTS_EXCEEDED', f.path, `limit ${this.limits.maxParts}`);
        shared.partsEventRaised = true;
        this.#stack.push(newHeaderFrame(`${f.path}/${f.children}`, f.depth + 1, true));
        return true;
      }
      this.#stack.push(newHeaderFrame(`${f.path}/${f.children}`, f.depth + 1));
      return true;
    }
    return false;
  }

  #startBody(frame: HeaderFrame): void {
    this.#stack.pop();
    const fields = parseHeaderBlock(frame.lines);
    const get = (n: string): string | undefined => fields.find((f) => f.name === n)?.value;
    const ct = parseStructured(get('content-type') ?? 'text/plain');
    const disposition = get('content-disposition');
    const cd = disposition ? parseStructured(disposition) : null;
    const encoding = normaliseEncoding(get('content-transfer-encoding'));
    const rawName = cd?.params.get('filename') ?? ct.params.get('name') ?? null;
    const info: LeafInfo = {
      path: frame.path,
      contentType: get('content-type') ? ct.value : null,
      name: rawName === null ? null : decodeEncodedWords(rawName),
      encoding,
      ...(this.#root.outerLayers > 0 ? { outerLayers: this.#root.outerLayers } : {}),
    };
    const tooDeep = frame.depth >= this.limits.maxDepth;
    if (ct.value === 'message/partial') this.#event('MIME_MESSAGE_PARTIAL', frame.path, ct.params.get('id')?.slice(0, 100));
    if (ct.value.startsWith('multipart/')) {
      const boundary = ct.params.get('boundary');
      if (!boundary) {
        this.#event('MIME_MISSING_BOUNDARY', frame.path);
      } else if (tooDeep) {
        this.#depthExceeded(frame.path);
      } else {
        this.#stack.push({
          kind: 'multipart',
          path: frame.path,
          depth: frame.depth,
          delimiter: Buffer.from(`--${boundary}`, 'latin1'),
          children: 0,
          closed: false,
        });
        return;
      }
    }
    const isMessage = ct.value === 'message/rfc822' || ct.value === 'message/global';
    if (isMessage && (encoding === null || ['7bit', '8bit', 'binary'].includes(encoding))) {
      if (tooDeep) this.#depthExceeded(frame.path);
      else {
        this.#stack.push(newHeaderFrame(`${frame.path}/1`, frame.depth + 1));
        return;
      }
    }
    const detached = (frame as HeaderFrame & { detached?: boolean }).detached === true;
    let sink: LeafSink = detached ? NULL_SINK : this.handlers.onLeaf(info);
    // An embedded message sent base64 or quoted-printable (RFC 2046 forbids it; mail clients
    // open it anyway): scanned whole as a file, and also walked as the message it is, so a
    // threat wrapped in twenty such layers is still found (or the depth cap says why not).
    if (isMessage && !detached) {
      if (tooDeep) this.#depthExceeded(frame.path);
      else sink = walkAlso(sink, new MimeWalker(this.handlers, this.limits, { path: `${frame.path}/1`, depth: frame.depth + 1, outerLayers: this.#root.outerLayers + 1, shared: this.#root.shared }));
    }
    this.#stack.push({ kind: 'leaf', path: frame.path, depth: frame.depth, decoder: this.#decoder(encoding, sink, frame.path), pendingEol: null });
  }

  #decoder(encoding: string | null, sink: LeafSink, path: string): BodyDecoder {
    const out = (chunk: Buffer): void => sink.write(chunk);
    switch (encoding) {
      case 'base64': {
        const d = new Base64Decoder(out);
        return {
          bulk: true,
          write: (c) => d.write(c),
          eol: () => {},
          end: () => {
            d.end();
            if (d.invalid) this.#event('BASE64_INVALID', path);
            sink.end();
          },
        };
      }
      case 'quoted-printable': {
        const d = new QuotedPrintableDecoder(out);
        return { bulk: false, write: (c) => d.write(c), eol: () => d.eol(), end: () => (d.end(), sink.end()) };
      }
      default:
        if (encoding !== null && !['7bit', '8bit', 'binary'].includes(encoding)) {
          this.#event('MIME_UNKNOWN_ENCODING', path, encoding.slice(0, 40));
        }
        return { bulk: true, write: out, eol: out, end: () => sink.end() };
    }
  }

  #depthExceeded(path: string): void {
    if (!this.#root.shared.depthEventRaised) this.#event('MIME_DEPTH_EXCEEDED', path, `limit ${this.limits.maxDepth}`);
    this.#root.shared.depthEventRaised = true;
  }

  /** Close the innermost frame; at the end of the message the last line end is content. */
  #pop(atEnd: boolean): void {
    const f = this.#stack.pop();
    if (!f) return;
    if (f.kind === 'leaf') {
      if (atEnd && this.#stack.length === 0 && f.pendingEol) f.decoder.eol(f.pendingEol);
      f.decoder.end();
    } else if (f.kind === 'multipart' && !f.closed) {
      this.#event('MIME_UNTERMINATED_MULTIPART', f.path);
    } else if (f.kind === 'headers') {
      // A part cut off inside its headers still has a (empty) body: let #startBody replace
      // the frame with its body frame, then close that.
      this.#stack.push(f);
      this.#startBody(f);
      this.#pop(atEnd);
    }
  }

  #event(name: AnomalyName, where: string, detail?: string): void {
    this.handlers.onEvent(detail === undefined ? { name, where } : { name, where, detail });
  }
}

const NULL_SINK: LeafSink = { write() {}, end() {} };

/** A leaf's decoded bytes to its sink and to a walker of the message they are. */
function walkAlso(sink: LeafSink, walker: MimeWalker): LeafSink {
  return {
    write: (chunk) => {
      sink.write(chunk);
      walker.write(chunk);
    },
    end: () => {
      sink.end();
      walker.end();
    },
  };
}

function newHeaderFrame(path: string, depth: number, detached = false): HeaderFrame {
  const f: HeaderFrame & { detached?: boolean } = { kind: 'headers', path, depth, lines: [], bytes: 0, overflow: false };
  if (detached) f.detached = true;
  return f;
}

/** A header line (`Name: value`) or, after the first field, a folded continuation. */
function looksLikeHeader(content: Buffer, haveField: boolean): boolean {
  const first = content[0];
  if ((first === 32 || first === 9) && haveField) return true;
  const colon = content.indexOf(58);
  if (colon <= 0) return false;
  // Field names are printable ASCII without spaces (RFC 5322 §2.2).
  return /^[\x21-\x39\x3b-\x7e]+$/.test(content.toString('latin1', 0, colon));
}
