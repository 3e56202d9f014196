/**
 * Running the analyzers on one file: every analyzer that applies, its indicators combined into
 * a verdict. Pure and synchronous; bounded by the analyzers' own limits.
 */

import { officeAnalyzer } from './office.ts';
import { diskImageAnalyzer, oneNoteAnalyzer, pdfAnalyzer, scriptAnalyzer, shortcutAnalyzer } from './documents.ts';
import { peAnalyzer } from './pe.ts';
import { type AnalysisVerdict, type Analyzer, type AnalyzerInput, verdictOf } from './types.ts';

export const ANALYZERS: readonly Analyzer[] = [peAnalyzer, officeAnalyzer, pdfAnalyzer, scriptAnalyzer, shortcutAnalyzer, diskImageAnalyzer, oneNoteAnalyzer];

/** Types worth keeping a file's bytes for: something an analyzer reads. */
export const ANALYZED_TYPES: ReadonlySet<string> = new Set([
  'exe', 'dll', 'cfb', 'doc', 'xls', 'ppt', 'msg', 'xml', 'pdf', 'js', 'vbs', 'ps1', 'hta', 'bat', 'html', 'svg', 'lnk', 'url', 'library-ms', 'iso', 'img', 'vhd', 'vhdx', 'one',
]);

/** The analyzers that apply to a file (their ids), without running them. */
export function analyzersFor(input: AnalyzerInput): string[] {
  return ANALYZERS.filter((a) => a.applies(input)).map((a) => a.id);
}

export function analyze(input: AnalyzerInput): AnalysisVerdict {
  const used = ANALYZERS.filter((a) => a.applies(input));
  return verdictOf(used.flatMap((a) => a.analyze(input)), used.map((a) => a.id));
}
