/**
 * Assembling what a running gateway is made of from a loaded configuration: the engines (the
 * built-in signatures with hash lists and ClamAV databases, data filtering, local analysis,
 * clamd), the inspector with its limits and 7-Zip, and the question whether any profile
 * quarantines. The gateway (app/gateway.ts) and the CLI commands that scan without a gateway
 * (`scan`, `policy test`, `config check`) build from here, so they inspect alike.
 */

import { join } from 'node:path';
import { AnalysisEngine } from '../inspect/engines/analysis/engine.ts';
import type { VerdictStore } from '../inspect/engines/analysis/verdict-store.ts';
import { YaraRules } from '../inspect/engines/analysis/yara.ts';
import { AnalysisPool } from '../inspect/engines/analysis/pool.ts';
import { describeError } from '../errors.ts';
import { nsisReader, otherFormatsReader, SevenZipTool, sevenZipReader, zipBySevenZipReader } from '../inspect/archive/seven-zip-tool.ts';
import { NSIS } from '../inspect/archive/sfx.ts';
import { VIA_SEVEN_ZIP, ZIP_BY_SEVEN_ZIP } from '../inspect/archive/unpack.ts';
import { BsdcatStreams, BsdtarTool, rarReader } from '../inspect/archive/bsdtar-tool.ts';
import { ClamdEngine } from '../inspect/engines/clamd.ts';
import { DlpEngine } from '../inspect/engines/dlp.ts';
import type { Engine } from '../inspect/engines/engine.ts';
import { BUILTIN_PATTERNS, loadHashListFile, loadSignatureFile, SignatureEngine } from '../inspect/engines/signatures.ts';
import { Inspector } from '../inspect/inspector.ts';
import type { LogFn } from '../logs/process-log.ts';
import { parseHostPort } from '../policy/config-schema.ts';
import type { LoadedConfig } from '../policy/load-config.ts';

/** Whether any profile keeps copies of what it blocks. */
export function quarantines(cfg: LoadedConfig): boolean {
  const p = cfg.profiles;
  return [...Object.values(p.antivirus), ...Object.values(p['file-blocking']), ...Object.values(p['data-filtering'])].some((x) => x.quarantine);
}

/**
 * The engines a config asks for: the built-in signature engine with its hash lists and ClamAV
 * databases (signatures it cannot use are reported through `log`, once per file), data
 * filtering when a profile needs it, local analysis (with `verdicts`, its store), and clamd.
 */
export function buildEngines(cfg: LoadedConfig, log?: LogFn, verdicts?: VerdictStore): Engine[] {
  const hashes = cfg.engines.signatures['hash-lists'].flatMap((p) => loadHashListFile(p));
  const bodies = [...BUILTIN_PATTERNS];
  for (const file of cfg.engines.signatures.databases) {
    const db = loadSignatureFile(file);
    hashes.push(...db.hashes);
    bodies.push(...db.bodies);
    if (db.skipped.length > 0) {
      log?.('warn', 'signatures skipped', { file, skipped: db.skipped.length, first: db.skipped.slice(0, 3) });
    }
  }
  const engines: Engine[] = [new SignatureEngine({ hashes, patterns: bodies })];
  // Data filtering counts the patterns of every profile; the policy weighs those of the rule's.
  const dlp = Object.entries(cfg.profiles['data-filtering']).flatMap(([profile, p]) =>
    p.patterns.map((x) => ({ key: `${profile}/${x.name}`, type: x.type, regex: x.regex, keywords: x.keywords })),
  );
  if (dlp.length > 0) engines.push(new DlpEngine(dlp));
  if (cfg.engines.analysis.enabled) {
    const yara = cfg.engines.analysis.yara.length ? YaraRules.load(cfg.engines.analysis.yara) : null;
    const { threads, queue, timeout } = cfg.engines.analysis;
    const pool = new AnalysisPool({ threads, queue, timeoutMs: timeout });
    const onStoreError = (err: unknown) => log?.('warn', 'verdict store cannot be written; the verdict applies but is not remembered', { error: describeError(err) });
    engines.push(new AnalysisEngine(verdicts ?? null, { yara, holdMs: cfg.engines.analysis.hold, pool, onStoreError }));
  }
  const clamd = cfg.engines.clamd;
  if (clamd) {
    const address = clamd.address.startsWith('/') ? { path: clamd.address } : parseHostPort(clamd.address)!;
    engines.push(new ClamdEngine({ address, timeoutMs: clamd.timeout, objects: clamd.objects }));
  }
  return engines;
}

export function buildInspector(cfg: LoadedConfig, engines: readonly Engine[] = buildEngines(cfg)): Inspector {
  const l = cfg.limits;
  const z = cfg.engines['seven-zip'];
  const sevenZip = SevenZipTool.find(z.path, z.timeout, join(cfg.dataDirAbs, 'spool'), z.memory);
  const t = cfg.engines.bsdtar;
  const bsdtar = BsdtarTool.find(t.path, t.timeout, join(cfg.dataDirAbs, 'spool'), z.memory);
  return new Inspector({
    engines,
    readers: { '7z': sevenZipReader(sevenZip), rar: rarReader(bsdtar), [VIA_SEVEN_ZIP]: otherFormatsReader(sevenZip, BsdcatStreams.of(bsdtar)), [ZIP_BY_SEVEN_ZIP]: zipBySevenZipReader(sevenZip), [NSIS]: nsisReader(sevenZip) },
    mime: { maxDepth: l['mime-depth'], maxParts: l['mime-parts'], maxHeaderBytes: 64 * 1024 },
    archives: {
      maxDepth: l['archive-depth'],
      maxFiles: l['archive-files'],
      maxTotalBytes: l['archive-unpacked-size'],
      maxRatio: l['archive-ratio'],
      maxTimeMs: l['archive-time'],
      maxContainerBytes: l['archive-size'],
    },
  });
}
