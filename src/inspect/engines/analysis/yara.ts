/**
 * YARA rules the admin configures (`engines.analysis.yara`), run on every file the analysis
 * engine sees, through YARA-X (`@litko/yara-x`: VirusTotal's Rust YARA as a prebuilt N-API
 * module from npm; an optional dependency, so a platform without a prebuilt binary still
 * installs smtpwall and reports YARA as unavailable). Scans run off the event loop
 * (`scanAsync`). A match is an indicator: score from the rule's `score` meta (default 70, i.e.
 * malicious on its own), reason naming the rule and its `description`.
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Indicator } from './types.ts';

interface RuleMatch {
  readonly ruleIdentifier: string;
  readonly namespace: string;
  readonly meta: Record<string, unknown>;
  readonly tags: readonly string[];
}
interface CompiledRules {
  scanAsync(data: Buffer): Promise<RuleMatch[]>;
}

export class YaraError extends Error {}

const DEFAULT_SCORE = 70;

export class YaraRules {
  /** `yara@<hash of the rules>`: a verdict made under other rules is made again. */
  readonly id: string;

  private constructor(private readonly rules: CompiledRules, readonly files: readonly string[], sources: string) {
    this.id = `yara@${createHash('sha256').update(sources).digest('hex').slice(0, 12)}`;
  }

  /** Compile rule files; errors name the file (YARA-X reports line and column). */
  static load(files: readonly string[]): YaraRules {
    let compile: (src: string) => CompiledRules;
    try {
      compile = (createRequire(import.meta.url)('@litko/yara-x') as { compile: (src: string) => CompiledRules }).compile;
    } catch (err) {
      throw new YaraError(`YARA rules configured but @litko/yara-x is not installed (npm install --no-save @litko/yara-x): ${(err as Error).message.split('\n')[0]}`);
    }
    const sources = files.map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch (err) {
        throw new YaraError(`${f}: ${(err as Error).message}`);
      }
    });
    for (const [i, src] of sources.entries()) {
      try {
        compile(src);
      } catch (err) {
        throw new YaraError(`${files[i]}: ${(err as Error).message}`);
      }
    }
    const all = sources.join('\n');
    return new YaraRules(compile(all), files, all);
  }

  async scan(bytes: Buffer): Promise<Indicator[]> {
    const matches = await this.rules.scanAsync(bytes);
    return matches.map((m) => {
      const score = typeof m.meta.score === 'number' ? Math.max(0, Math.min(100, m.meta.score)) : DEFAULT_SCORE;
      const about = typeof m.meta.description === 'string' ? `: ${m.meta.description}` : '';
      return { analyzer: 'yara', score, reason: `YARA rule ${m.ruleIdentifier}${about}` };
    });
  }
}
