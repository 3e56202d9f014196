/**
 * What the MIME walker promises its user (the inspector): its limits, what it says of each
 * leaf it finds, and the handlers it calls.
 */

import type { AnomalyEvent } from '../../events.ts';
import type { LeafSink } from './body-decoders.ts';

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
  /** Other names some parser gives the same part (a filename given twice, in two forms). */
  readonly otherNames?: readonly string[];
  /** MIME nesting depth of the part (a message found inside it nests one deeper). */
  readonly mimeDepth?: number;
  /** The declared charset parameter, lower-cased (text in UTF-16/UTF-7 is decoded: decode/transcode.ts). */
  readonly charset?: string;
}

export interface WalkerHandlers {
  onLeaf(info: LeafInfo): LeafSink;
  onEvent(event: AnomalyEvent): void;
}
