/**
 * PDF, scripts, HTML, shortcuts and disk images: what makes each of them run something or
 * steal something, found in their text (bounded to the first 4 MiB).
 */

import { listIso } from '../../archive/iso.ts';
import { oneNoteFiles } from '../../archive/onenote.ts';
import { identifyText, isTextLike } from '../../file-type.ts';
import type { Analyzer, AnalyzerInput, Indicator } from './types.ts';

const TEXT_LIMIT = 4 * 1024 * 1024;
const textOf = (i: AnalyzerInput): string => i.bytes.toString('latin1', 0, Math.min(i.bytes.length, TEXT_LIMIT));

function indicators(name: string) {
  const out: Indicator[] = [];
  return { out, add: (score: number, reason: string, phishing = false) => out.push({ analyzer: name, score, reason, ...(phishing ? { phishing } : {}) }) };
}

/** PDF names may hide behind #xx escapes (/J#61vaScript is /JavaScript). */
function pdfNames(text: string): { names: Map<string, number>; escaped: number } {
  const names = new Map<string, number>();
  let escaped = 0;
  for (const m of text.matchAll(/\/([A-Za-z0-9#]{2,40})/g)) {
    let n = m[1]!;
    if (n.includes('#')) {
      const decoded = n.replace(/#([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
      if (decoded !== n) escaped++;
      n = decoded;
    }
    names.set(n, (names.get(n) ?? 0) + 1);
  }
  return { names, escaped };
}

export const pdfAnalyzer: Analyzer = {
  id: 'pdf@1',
  applies: (i) => i.detectedType === 'pdf',
  analyze(input) {
    const { out, add } = indicators('pdf');
    const text = textOf(input);
    const { names, escaped } = pdfNames(text);
    const has = (n: string): number => names.get(n) ?? 0;
    const js = has('JavaScript') + has('JS');
    if (js) add(40, `JavaScript (${js} objects)`);
    if (has('OpenAction') || has('AA')) add(js ? 25 : 10, `runs an action on open (${has('OpenAction') ? 'OpenAction' : 'AA'})`);
    if (has('Launch')) add(50, 'Launch action (starts a program)');
    if (has('EmbeddedFile')) add(20, 'embedded file');
    if (escaped >= 3 && (js || has('Launch') || has('OpenAction'))) add(20, `obfuscated names (${escaped} #-escaped)`);
    if (has('SubmitForm') && /\/(Password|Pass|pwd)\b|password/i.test(text)) add(30, 'form submitting a password', true);
    const uris = has('URI');
    if (uris > 20) add(10, `${uris} links`);
    return out;
  },
};

const DOWNLOAD = /(MSXML2\.XMLHTTP|Microsoft\.XMLHTTP|WinHttp\.WinHttpRequest|Net\.WebClient|DownloadFile|DownloadString|Invoke-WebRequest|\biwr\b|Start-BitsTransfer|bitsadmin\s+\/transfer|certutil(\.exe)?\s+-urlcache|curl(\.exe)?\s+-o|XMLHttpRequest|fetch\s*\()/i;
const EXECUTE = /(WScript\.Shell|\.Run\s*\(|\.Exec\s*\(|ShellExecute|Start-Process|Invoke-Expression|\bIEX\b|cmd(\.exe)?\s*\/c|rundll32|regsvr32|mshta|\bstart\s+"?\S+\.exe)/i;
const WRITE = /(ADODB\.Stream|SaveToFile|Scripting\.FileSystemObject|Out-File|Set-Content|WriteAllBytes)/i;

export const scriptAnalyzer: Analyzer = {
  id: 'script@1',
  applies: (i) => ['js', 'vbs', 'ps1', 'hta', 'bat', 'html', 'svg'].includes(i.detectedType),
  analyze(input) {
    const { out, add } = indicators('script');
    const text = textOf(input);
    const kind = input.detectedType;
    const dl = DOWNLOAD.exec(text)?.[1];
    const ex = EXECUTE.exec(text)?.[1];
    if (dl && ex) add(60, `downloads and runs code (${dl} → ${ex})`);
    else if (ex && kind !== 'html' && kind !== 'svg') add(25, `runs programs (${ex})`);
    else if (dl && kind !== 'html' && kind !== 'svg') add(15, `downloads from the internet (${dl})`);
    if (WRITE.test(text) && (dl || ex)) add(15, 'writes files to disk');
    if (/-e(nc(odedcommand)?)?\s+[A-Za-z0-9+/=]{40,}/i.test(text)) add(35, 'PowerShell with an encoded command');
    const b64 = /[A-Za-z0-9+/]{400,}={0,2}/.exec(text);
    if (b64 && kind !== 'html' && kind !== 'svg') add(15, `long base64 string (${b64[0].length} characters)`);
    const charCodes = (text.match(/(String\.fromCharCode|Chr[WB]?)\s*\(/gi) ?? []).length;
    if (charCodes >= 10) add(20, `builds strings from character codes (${charCodes} times)`);
    if (/\b(eval|Execute|ExecuteGlobal)\s*\(/i.test(text) && (charCodes >= 3 || b64)) add(20, 'evaluates code it decoded');
    if (kind === 'hta') add(20, 'HTML application (runs with full user rights)');
    if (kind === 'html' || kind === 'svg') {
      // HTML smuggling: the page assembles a file in script and makes the browser save it.
      const blob = /new\s+Blob\s*\(|msSaveOrOpenBlob|data:application\/(octet-stream|x-msdownload|zip)/i.test(text);
      const save = /createObjectURL|\.download\s*=|download=["']|msSaveOrOpenBlob/i.test(text);
      const decode = /atob\s*\(|Uint8Array|charCodeAt/i.test(text);
      if (blob && save && decode) add(70, 'HTML smuggling: script builds a file from encoded data and triggers a download');
      else if (blob && save) add(35, 'script creates a file and offers it for download');
      // Tags end at the next '<' too: `[^>]*` alone scanned to the end of the file from every
      // "<form" of a crafted page without '>' (1 MB took minutes).
      const forms = [...text.matchAll(/<form\b[^<>]{0,4096}>/gi)].map((m) => m[0]);
      const password = /<input\b[^<>]{0,4096}type\s*=\s*["']?password/i.test(text);
      const offsite = forms.some((f) => /action\s*=\s*["']?(https?:)?\/\//i.test(f));
      if (password && (offsite || /fetch\s*\(|XMLHttpRequest|\$\.post|sendBeacon/i.test(text))) {
        add(50, 'credential form sending a password to a remote site', true);
      } else if (password) add(20, 'asks for a password');
    }
    return out;
  },
};

/** Strings of a shortcut (ASCII and UTF-16) — target and arguments live in them. */
function shortcutStrings(b: Buffer): string {
  return `${b.toString('latin1').replace(/[^\x20-\x7e]+/g, ' ')} ${b.toString('utf16le').replace(/[^\x20-\x7e]+/g, ' ')}`;
}

export const shortcutAnalyzer: Analyzer = {
  id: 'shortcut@1',
  applies: (i) => ['lnk', 'url', 'library-ms'].includes(i.detectedType),
  analyze(input) {
    const { out, add } = indicators('shortcut');
    if (input.detectedType === 'lnk') {
      const s = shortcutStrings(input.bytes.subarray(0, 64 * 1024));
      const shell = /(cmd\.exe|powershell(\.exe)?|pwsh|mshta(\.exe)?|wscript|cscript|rundll32|regsvr32|conhost)/i.exec(s)?.[1];
      if (shell) {
        const args = /(\/c|-e(nc)?|-w(indowstyle)?\s+hidden|http[s]?:\/\/|\\\\[\w.]+\\)/i.exec(s)?.[1];
        add(args ? 70 : 45, `shortcut runs ${shell}${args ? ` with arguments (${args})` : ''}`);
      }
      if (/\\\\[\w.-]+\\[\w$.-]+/.test(s)) add(30, 'shortcut points to a remote share');
    } else {
      const text = textOf(input);
      const remote = /(URL|url)\s*=\s*(file:\/\/|\\\\)[^\s]+|<url>\s*(file:\/\/|\\\\|https?:\/\/)[^<]+/i.exec(text);
      if (remote) add(60, `shortcut to a remote location (${remote[0].slice(0, 80)})`);
      if (/IconFile\s*=\s*\\\\/i.test(text)) add(30, 'icon loaded from a remote share (leaks credentials)');
    }
    return out;
  },
};

/** File names that run when double-clicked in a mounted image. */
const RUNNABLE = /\.(exe|scr|lnk|js|jse|vbs|vbe|wsf|hta|bat|cmd|dll|msi|ps1|com|pif|cpl)$/i;

export const diskImageAnalyzer: Analyzer = {
  id: 'disk-image@2',
  applies: (i) => ['iso', 'img', 'vhd', 'vhdx'].includes(i.detectedType),
  analyze(input) {
    const { out, add } = indicators('disk-image');
    // An ISO 9660 image lists its files in its directories; for other images (UDF, FAT, VHD)
    // names are looked for as plain or UTF-16 text.
    const listing = input.detectedType === 'iso' ? listIso(input.bytes, 10_000) : null;
    const names = listing
      ? listing.files.map((f) => f.path.split('/').pop()!)
      : [...shortcutStrings(input.bytes.subarray(0, 8 * 1024 * 1024)).matchAll(/([\w-]{1,64}\.[a-z0-9]{2,4})(;1)?\b/gi)].map((m) => m[1]!);
    const runnable = [...new Set(names.filter((n) => RUNNABLE.test(n)).map((n) => n.toLowerCase()))];
    add(20, `disk image (${input.detectedType}): mounts with a double click, bypassing mark-of-the-web`);
    if (runnable.length) add(50, `disk image holding files that run (${runnable.slice(0, 5).join(', ')})`);
    return out;
  },
};

/** Types of an embedded file that run (or render script) when the page's icon is double-clicked. */
const RUNS: Readonly<Record<string, string>> = {
  exe: 'a program', dll: 'a program', lnk: 'a shortcut', hta: 'an HTML application', html: 'a page with script',
  js: 'a script', vbs: 'a script', ps1: 'a script', bat: 'a script', url: 'a shortcut', 'library-ms': 'a shortcut',
};

/** What an embedded file of a OneNote section is, by the inspector's own typing, if it runs. */
function runnableKind(b: Buffer): string | null {
  if (b[0] === 0x4d && b[1] === 0x5a) return RUNS.exe!;
  if (b.length >= 8 && b.readUInt32LE(0) === 0x4c && b[4] === 0x01 && b[5] === 0x14) return RUNS.lnk!;
  const head = b.subarray(0, 4096);
  if (!isTextLike(head)) return null;
  const type = identifyText(head);
  // A page runs something only with script (one without is a document the browser shows).
  if (type === 'html' && head.indexOf('<script', 0, 'latin1') === -1 && head.indexOf('<SCRIPT', 0, 'latin1') === -1) return null;
  return RUNS[type] ?? null;
}

export const oneNoteAnalyzer: Analyzer = {
  id: 'onenote@1',
  applies: (i) => i.detectedType === 'one',
  analyze(input) {
    const { out, add } = indicators('onenote');
    const kinds = new Set<string>();
    let files = 0;
    for (const f of oneNoteFiles(input.bytes)) {
      if (f === 'truncated') break;
      const kind = runnableKind(f.data);
      if (kind) kinds.add(kind);
      if (!/^(\x89png|\xff\xd8\xff|gif8|bm|\x01\x00\x00\x00)/i.test(f.data.toString('latin1', 0, 4))) files++; // pictures are what pages hold
    }
    if (files) add(20, `OneNote section with ${files} embedded file${files === 1 ? '' : 's'} besides pictures: a double click on the page opens them`);
    if (kinds.size) add(60, `OneNote section carrying a file that runs (${[...kinds].join(', ')})`);
    return out;
  },
};
