/**
 * Static analysis of unknown files (no execution): small analyzers, each looking at one kind of
 * file and reporting indicators with a score and a reason a human can read; the verdict adds
 * the scores up against documented thresholds.
 *
 *   score ≥ 70: malicious   30–69: grayware   below 30: benign
 *   phishing: an analyzer found credential harvesting (a form posting a password off-site)
 */

export type VerdictClass = 'benign' | 'grayware' | 'phishing' | 'malicious';

export interface Indicator {
  readonly analyzer: string;
  readonly score: number;
  readonly reason: string;
  /** This indicator means credential phishing (decides the class together with the score). */
  readonly phishing?: boolean;
}

export interface AnalysisVerdict {
  readonly verdict: VerdictClass;
  readonly score: number;
  readonly indicators: readonly Indicator[];
  /** Analyzers that looked at the file (their names and versions), for the verdict store. */
  readonly analyzers: readonly string[];
}

export const GRAYWARE_SCORE = 30;
export const MALICIOUS_SCORE = 70;

export interface AnalyzerInput {
  readonly bytes: Buffer;
  readonly detectedType: string;
  readonly name: string | null;
  readonly flags: readonly string[];
}

export interface Analyzer {
  /** `name@version`: recorded with every verdict, so a better analyzer can re-judge old files. */
  readonly id: string;
  applies(input: AnalyzerInput): boolean;
  analyze(input: AnalyzerInput): Indicator[];
}

export function verdictOf(indicators: readonly Indicator[], analyzers: readonly string[]): AnalysisVerdict {
  const score = Math.min(100, indicators.reduce((n, i) => n + i.score, 0));
  const phishing = indicators.some((i) => i.phishing);
  const verdict: VerdictClass = score >= MALICIOUS_SCORE ? 'malicious' : phishing ? 'phishing' : score >= GRAYWARE_SCORE ? 'grayware' : 'benign';
  return { verdict, score, indicators, analyzers };
}
