/**
 * What a file's name and declared type claim, against what its bytes are: the flags file
 * blocking and the log use. A name is what the recipient sees and what Windows uses to decide
 * how to open the file; the bytes are what runs. Flags:
 *
 *   type-mismatch     the extension or the declared Content-Type says one known type, the
 *                     content is another (invoice.pdf that is a PE executable)
 *   double-extension  a harmless-looking extension followed by an executable one
 *                     (invoice.pdf.exe, "report.doc     .scr")
 *   rtlo              a right-to-left override in the name ("invoice\u202Efdp.exe" shows as
 *                     "invoiceexe.pdf")
 */

/** Extension → the detected types it may legitimately hold. */
const EXTENSION_TYPES: Readonly<Record<string, readonly string[]>> = {
  exe: ['exe'], scr: ['exe'], com: ['exe'], cpl: ['exe', 'dll'], dll: ['dll', 'exe'], sys: ['exe', 'dll'],
  msi: ['msi'], pdf: ['pdf'], rtf: ['rtf'], one: ['one'],
  doc: ['doc', 'rtf', 'cfb', 'html', 'xml'], dot: ['doc', 'cfb'], xls: ['xls', 'cfb', 'html', 'xml'], ppt: ['ppt', 'cfb'],
  docx: ['docx', 'zip'], docm: ['docm', 'docx', 'zip'], xlsx: ['xlsx', 'zip'], xlsm: ['xlsm', 'xlsx', 'zip'],
  pptx: ['pptx', 'zip'], pptm: ['pptm', 'pptx', 'zip'],
  zip: ['zip', 'encrypted-zip'], rar: ['rar', 'encrypted-rar'], '7z': ['7z', 'encrypted-7z'],
  gz: ['gz', 'tar.gz'], tgz: ['gz', 'tar.gz'], tar: ['tar'], iso: ['iso'], img: ['img', 'binary'], vhd: ['vhd'], vhdx: ['vhdx'],
  lnk: ['lnk'], jpg: ['jpg'], jpeg: ['jpg'], png: ['png'], gif: ['gif'], bmp: ['bmp'], tif: ['tif'], tiff: ['tif'],
  txt: ['text', 'xml', 'html', 'js', 'vbs', 'ps1', 'bat', 'empty'], csv: ['text', 'empty'],
  htm: ['html', 'text'], html: ['html', 'text'], xml: ['xml', 'text', 'svg'], svg: ['svg', 'xml'],
  eml: ['text'], ics: ['text', 'ics'], wav: ['wav'], mp3: ['mp3'], mp4: ['mp4'],
};

/** Content-Type → the detected types it may legitimately hold (others: not judged). */
const DECLARED_TYPES: Readonly<Record<string, readonly string[]>> = {
  'application/pdf': ['pdf'],
  'image/jpeg': ['jpg'], 'image/png': ['png'], 'image/gif': ['gif'], 'image/bmp': ['bmp'], 'image/tiff': ['tif'],
  'application/zip': ['zip', 'encrypted-zip', 'docx', 'xlsx', 'pptx', 'docm', 'xlsm', 'pptm', 'jar', 'apk'],
  'application/msword': ['doc', 'cfb', 'rtf'], 'application/vnd.ms-excel': ['xls', 'cfb'],
  'application/rtf': ['rtf'], 'text/rtf': ['rtf'],
};

/** Types a double extension's last part makes dangerous: they run or open as code. */
const EXECUTABLE_EXTENSIONS = new Set([
  'exe', 'scr', 'com', 'pif', 'cpl', 'dll', 'msi', 'bat', 'cmd', 'vbs', 'vbe', 'js', 'jse', 'wsf', 'wsh', 'hta',
  'ps1', 'psm1', 'lnk', 'url', 'jar', 'iso', 'img', 'vhd', 'vhdx', 'reg', 'chm', 'scf', 'library-ms', 'searchconnector-ms', 'settingcontent-ms',
]);
/** Things attackers pretend a file is, in front of the real extension. */
const DECOY_EXTENSIONS = new Set([
  'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'txt', 'rtf', 'jpg', 'jpeg', 'png', 'gif', 'zip', 'rar', 'htm', 'html', 'csv', 'mp3', 'mp4', 'odt',
]);

/** Types whose content is generic enough that a name cannot contradict it. */
const UNJUDGED = new Set(['binary', 'empty']);

/**
 * The name as Windows resolves it when the file is saved and opened: the last path component
 * (`/` or `\\`), an NTFS stream suffix dropped (`report.hta::$DATA`, `x.js:evil:$DATA`), then
 * the trailing dots and spaces Win32 strips (`report.hta.` and `report.hta   ` are .hta), and
 * the invisible characters that change nothing of the name a program sees (bidirectional
 * controls, zero-width spaces and joiners, the BOM).
 */
export function windowsName(name: string): string {
  let n = name.replace(/[\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g, '');
  n = n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1);
  n = n.replace(/:[^:]*:\$DATA$/i, '').replace(/::\$DATA$/i, '');
  return n.replace(/[. ]+$/, '');
}

/** The extension Windows would use (`library-ms`, `searchConnector-ms` and `settingcontent-ms` are long ones that run). */
export function extensionOf(name: string): string | null {
  const m = /\.([A-Za-z0-9-]{1,24})$/.exec(windowsName(name));
  return m ? m[1]!.toLowerCase() : null;
}

/**
 * Extensions whose text Windows hands to a program that reads it one way whatever it holds: a
 * `.js` runs under Windows Script Host, a `.hta` under mshta (its `<hta:application>` tag is
 * optional), a `.bat` under cmd, an `.html` or `.svg` is rendered by the browser — so their
 * type is that program's, not what the first kilobytes show (a script behind 5 KiB of
 * comments reads as plain text there, an HTA without the tag as HTML).
 */
const RUN_BY_EXTENSION: Readonly<Record<string, string>> = {
  js: 'js', jse: 'js', wsf: 'js', vbs: 'vbs', vbe: 'vbs', ps1: 'ps1', psm1: 'ps1', bat: 'bat', cmd: 'bat', hta: 'hta',
  url: 'url', 'library-ms': 'library-ms', 'searchconnector-ms': 'library-ms', htm: 'html', html: 'html', xhtml: 'html', xht: 'html', shtml: 'html', svg: 'svg',
};
/** Content types a text may be detected as, which such an extension overrides. */
const TEXT_TYPES: ReadonlySet<string> = new Set(['text', 'html', 'xml', 'svg', 'js', 'vbs', 'ps1', 'bat', 'hta', 'url', 'library-ms']);

/**
 * The type a file has for Windows: its detected type, except for text under a name (any of
 * its names: a client may use any; one that runs before one that renders) that Windows opens
 * by its extension (RUN_BY_EXTENSION). Binary content keeps its detected type (a PE named .js
 * is an exe).
 */
export function typeForWindows(detectedType: string, names: ReadonlyArray<string | null>): string {
  if (!TEXT_TYPES.has(detectedType)) return detectedType;
  let page: string | null = null;
  for (const n of names) {
    const run = n === null ? undefined : RUN_BY_EXTENSION[extensionOf(n) ?? ''];
    if (run === 'html' || run === 'svg') page ??= run;
    else if (run !== undefined) return run; // a name that runs wins over one that renders
  }
  return page ?? detectedType;
}

export function fileFlags(name: string | null, declaredType: string | null, detectedType: string): string[] {
  const flags: string[] = [];
  if (name !== null) {
    if (/[\u202a-\u202e\u2066-\u2069]/.test(name)) flags.push('rtlo');
    const parts = windowsName(name).split('.').map((p) => p.trim().toLowerCase());
    if (parts.length >= 3 && EXECUTABLE_EXTENSIONS.has(parts[parts.length - 1]!) && DECOY_EXTENSIONS.has(parts[parts.length - 2]!)) {
      flags.push('double-extension');
    }
  }
  if (!UNJUDGED.has(detectedType)) {
    const ext = name === null ? null : extensionOf(name);
    const byName = ext === null ? undefined : EXTENSION_TYPES[ext];
    const byDeclared = declaredType === null ? undefined : DECLARED_TYPES[declaredType];
    if ((byName && !byName.includes(detectedType)) || (byDeclared && !byDeclared.includes(detectedType))) flags.push('type-mismatch');
  }
  return flags;
}
