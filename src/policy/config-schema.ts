/**
 * The configuration schema: every key with its type, default, bounds, unit and meaning, in one
 * place. The TypeScript type of a loaded config is derived from it, so code and documentation
 * cannot drift. Unknown keys are errors (a typo must not silently disable a protection).
 */

import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ACTIONS } from './actions.ts';
import { parseDuration, parseSize } from './units.ts';

const size = (def: string, doc: string) =>
  z
    .union([z.string(), z.number()])
    .default(def)
    .transform((v, ctx) => {
      const n = parseSize(v);
      if (n === null) {
        ctx.addIssue({ code: 'custom', message: `expected a size such as 25MiB, 100kb or 1048576 (${doc})` });
        return z.NEVER;
      }
      return n;
    })
    .meta({ description: doc, unit: 'size' });

const duration = (def: string, doc: string) =>
  z
    .union([z.string(), z.number()])
    .default(def)
    .transform((v, ctx) => {
      const n = parseDuration(v);
      if (n === null || n <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected a duration such as 30s, 5m or 250ms (${doc})` });
        return z.NEVER;
      }
      return n;
    })
    .meta({ description: doc, unit: 'duration' });

const int = (def: number, min: number, max: number, doc: string) =>
  z.number().int().min(min).max(max).default(def).describe(doc);

/** `host:port`, `[v6]:port` or `:port`. */
export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(s.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: 'expected host:port, e.g. 127.0.0.1:2525' });

const upstream = z.string().refine((s) => s.startsWith('mailbox:') ? s.length > 'mailbox:'.length : parseHostPort(s) !== null, {
  message: 'expected host:port of the receiving server, or mailbox:DIR for the built-in mailbox',
});

const action = z.enum(ACTIONS);

/** A reply template: `CODE X.Y.Z text`, placeholders {threat} {id} {rule}. */
const replyTemplate = (expectClass: 4 | 5) =>
  z.string().regex(new RegExp(`^${expectClass}[0-9]{2} ${expectClass}\\.[0-9]{1,3}\\.[0-9]{1,3} \\S.*$`), {
    message: `expected "${expectClass}NN ${expectClass}.X.Y text", e.g. "${expectClass === 5 ? '550 5.7.1 Message rejected' : '451 4.7.1 Try again later'}"`,
  });

export const DEFAULT_REPLIES = {
  block: '541 5.4.1 Content blocked by smtpwall (threat: {threat}, id: {id})',
  reject: '550 5.7.1 Message rejected by smtpwall (threat: {threat}, id: {id})',
  tempfail: '451 4.7.1 Message could not be accepted now, try again later (id: {id})',
} as const;

/** `default` resolves to smtpwall's default for SMTP, block (the firewall this follows: alert). */
const avAction = z.enum(['default', ...ACTIONS]);

const threatException = z.strictObject({
  'threat-id': z.string().regex(/^\d{8}$/, { message: 'expected an 8-digit threat id as shown in threat records' }).describe('the 8-digit threat id, as threat records show it'),
  action: action.describe('action for this threat instead of the profile\'s'),
  from: z.array(z.string().min(1)).optional().describe('only for these envelope senders'),
  to: z.array(z.string().min(1)).optional().describe('only when a recipient matches'),
  comment: z.string().optional().describe('why (for the next admin)'),
});

const antivirusProfile = z
  .strictObject({
    action: avAction.default('default').describe('action for a signature match (default: block)'),
    'analysis-action': avAction.default('default').describe('action for a malicious or phishing analysis verdict (default: the same as action)'),
    'grayware-action': action.default('alert').describe('action for a grayware analysis verdict'),
    'analysis-on-timeout': action
      .default('tempfail')
      .describe('when a verdict is not ready within engines.analysis.hold: tempfail (the sender retries, the verdict will be known) or allow (deliver; a late malicious verdict is a retro-alert)'),
    exceptions: z.array(threatException).default([]).describe('threat ids with their own action (known false positives)'),
    quarantine: z.boolean().default(false).describe('keep a copy of messages this profile blocks or rejects'),
    'on-error': action
      .default('tempfail')
      .describe('action when a scan cannot complete: engine failure, deadline, or a MIME limit hit'),
    'on-archive-limit': action
      .default('block')
      .describe('action when an archive limit stops unpacking (zip bomb, too many files, too deep, too slow)'),
    'on-unscannable': action
      .default('block')
      .describe('action for content that cannot be inspected: encrypted or unsupported archives, corrupt archives, message/partial'),
    replies: z
      .strictObject({
        block: replyTemplate(5).default(DEFAULT_REPLIES.block).describe('a 5xx; placeholders {threat} {id} {rule}'),
        reject: replyTemplate(5).default(DEFAULT_REPLIES.reject).describe('a 5xx'),
        tempfail: replyTemplate(4).default(DEFAULT_REPLIES.tempfail).describe('a 4xx'),
      })
      .prefault({})
      .describe('reply texts for block, reject and tempfail'),
  })
  .describe('an antivirus profile');

export const FILE_BLOCK_ACTIONS = ['alert', 'block', 'continue'] as const;

const fileBlockingRule = z.strictObject({
  name: z.string().min(1).describe('named in threat records'),
  types: z.array(z.string().min(1)).default([]).describe('detected types (exe, encrypted-zip, …) and special types'),
  extensions: z.array(z.string().min(1)).default([]).describe('file name extensions, without the dot'),
  direction: z.enum(['upload', 'download', 'both']).default('both').describe('SMTP carries files client to server: upload'),
  action: z.enum(FILE_BLOCK_ACTIONS).default('block').describe('alert, block, or continue (treated as block on SMTP)'),
});

const fileBlockingProfile = z.strictObject({
  rules: z.array(fileBlockingRule).min(1).describe('file types and extensions to match, first match wins'),
  'multi-encoding-threshold': z.number().int().min(1).max(100).default(2).describe('a file decoded more than this many times is multi-encoding'),
  action: action.default('block').describe('SMTP action when a rule says block or continue'),
  quarantine: z.boolean().default(false).describe('keep a copy of messages this profile blocks or rejects'),
});

const DLP_TYPES = ['credit-card', 'us-ssn', 'iban', 'email'] as const;

const dlpPattern = z
  .strictObject({
    name: z.string().min(1).describe('named in threat records'),
    type: z.enum(DLP_TYPES).optional().describe('a predefined pattern (with checksum where there is one)'),
    regex: z.string().optional().describe('a custom regular expression (JavaScript syntax, case-insensitive)'),
    keywords: z.array(z.string().min(1)).optional().describe('words or phrases, case-insensitive'),
    weight: z.number().min(0).default(1).describe('added to the message score per occurrence'),
  })
  .refine((p) => [p.type, p.regex, p.keywords].filter((x) => x !== undefined).length === 1, {
    message: 'a pattern has exactly one of type, regex or keywords',
  })
  .refine((p) => p.regex === undefined || isValidRegex(p.regex), { message: 'not a valid regular expression' });

function isValidRegex(source: string): boolean {
  try {
    new RegExp(source, 'i');
    return true;
  } catch {
    return false;
  }
}

const dataFilteringProfile = z.strictObject({
  patterns: z.array(dlpPattern).min(1).describe('what to count; each occurrence adds its weight to the message score'),
  'alert-threshold': z.number().min(0).default(1).describe('score at or above which the message is logged'),
  'block-threshold': z.number().min(0).default(10).describe('score at or above which `action` applies'),
  action: action.default('block').describe('action at or above block-threshold'),
  quarantine: z.boolean().default(false).describe('keep a copy of messages this profile blocks or rejects'),
});

const profileRefs = z.strictObject({
  antivirus: z.string().optional().describe('an antivirus profile (built in: default, block)'),
  'file-blocking': z.string().optional().describe('a file-blocking profile'),
  'data-filtering': z.string().optional().describe('a data-filtering profile'),
  group: z.string().optional().describe('a profile group instead of single profiles'),
});

const addressPattern = z
  .string()
  .min(1)
  .refine((p) => !(p.length > 2 && p.startsWith('/') && p.endsWith('/')) || isValidRegex(p.slice(1, -1)), {
    message: 'not a valid /regular expression/',
  });

const cidr = z.string().refine(
  (s) => {
    const v = s.startsWith('!') ? s.slice(1) : s;
    const [ip, bits] = v.split('/');
    const family = isIP(ip ?? '');
    if (family === 0) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
  },
  { message: 'expected an address or CIDR, optionally negated with !, e.g. 10.0.0.0/8 or !192.0.2.1' },
);

const rule = z.strictObject({
  name: z.string().min(1).describe('named in every record of a transaction it matched; first matching rule wins, none: default-rule'),
  match: z
    .strictObject({
      listeners: z.array(z.string()).optional().describe('listener names; any if absent'),
      client: z.array(cidr).optional().describe('client addresses/CIDRs; `!` negates'),
      server: z.array(cidr).optional().describe('upstream (receiving server) addresses/CIDRs; `!` negates'),
      from: z.array(addressPattern).optional().describe('envelope senders: address, @domain, *-wildcard or /regex/'),
      to: z.array(addressPattern).optional().describe('envelope recipients (any one matching)'),
      user: z.array(addressPattern).optional().describe('authenticated user (AUTH relayed and accepted); "<none>" for none'),
      direction: z.array(z.string().min(1)).optional().describe('direction labels of the listener (inbound, outbound, …)'),
    })
    .prefault({}),
  profiles: profileRefs.prefault({}),
});

const listener = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, { message: 'letters, digits, . _ - only' }).describe('named in every log record and usable in rules'),
  listen: hostPort.describe('address:port to accept connections on'),
  direction: z.string().min(1).default('inbound').describe('a label for rules: inbound, outbound, internal, …'),
  mode: z
    .enum(['relay', 'transparent', 'tproxy'])
    .default('relay')
    .describe('relay: every session goes to `upstream`; transparent: to the original destination of a connection redirected by the kernel (iptables/nftables REDIRECT); tproxy: the same behind a TPROXY rule, and the upstream connection comes from the client\'s own address (needs CAP_NET_ADMIN and policy routing)'),
  upstream: upstream.optional().describe('receiving server host:port, or mailbox:DIR (relay mode)'),
  forwarding: z.enum(['store-and-forward', 'cut-through']).default('store-and-forward').describe('store-and-forward: the whole message is judged before the upstream sees its end; cut-through: streamed on, the end held until the verdict'),
  tls: z
    .strictObject({
      mode: z
        .enum(['terminate', 'strip', 'passthrough'])
        .optional()
        .describe('terminate (default with cert+key): STARTTLS with our certificate, inspected in clear; strip (default without): no TLS to the client; passthrough: STARTTLS relayed end to end, uninspectable'),
      cert: z.string().optional().describe('PEM certificate chain file'),
      key: z.string().optional().describe('PEM private key file'),
      implicit: z.boolean().default(false).describe('TLS from the first byte (port 465 style); needs cert and key'),
      'passthrough-action': z
        .enum(['block', 'allow'])
        .default('block')
        .describe('passthrough: block refuses STARTTLS (454) so mail stays inspectable; allow relays it and logs the session as uninspectable'),
    })
    .prefault({}),
  vrfy: z
    .enum(['relay', 'refuse'])
    .default('relay')
    .describe("VRFY and EXPN: relayed to the upstream (its answer, usually 252), or refused with 502 5.5.1 (like Postfix's disable_vrfy_command); logged either way"),
  'relay-auth': z.boolean().default(true).describe('relay AUTH between client and upstream when the upstream offers it; never logged'),
  'trusted-clients': z.array(cidr).default([]).describe('client addresses/CIDRs allowed to send XCLIENT/XFORWARD'),
  'proxy-protocol': z
    .boolean()
    .default(false)
    .describe('every connection starts with a PROXY protocol header (v1 or v2: HAProxy send-proxy, send-proxy-v2) naming the real client, which sessions, limits, rules and records then use (relay mode)'),
  'proxy-from': z.array(cidr).default([]).describe('with proxy-protocol: the load balancers allowed to connect (a connection from any other address is refused)'),
  'upstream-reuse': z
    .boolean()
    .default(false)
    .describe('keep upstream sessions open after a client is done (RSET) and give them to the next client (relay mode only)'),
  'upstream-reuse-max': int(16, 1, 1000, 'idle upstream sessions kept for reuse'),
  'upstream-reuse-idle': duration('10s', 'an idle upstream session kept longer than this is closed (QUIT)'),
  'upstream-reuse-xforward': z
    .boolean()
    .default(true)
    .describe("with upstream-reuse: tell the upstream each client's address and HELO name with XFORWARD, when it offers XFORWARD"),
  'upstream-tls': z
    .strictObject({
      mode: z
        .enum(['opportunistic', 'required', 'off'])
        .default('opportunistic')
        .describe('STARTTLS to the upstream when it offers it (opportunistic), always (required), never (off)'),
      verify: z.enum(['none', 'verify', 'pinned']).default('none').describe('none, verify against the system CAs, or pinned to `ca`'),
      ca: z.string().optional().describe('PEM CA file for verify: pinned'),
      servername: z.string().optional().describe('name to verify (default: the upstream host)'),
    })
    .prefault({}),
});

export const configSchema = z.strictObject({
  'data-dir': z.string().default('./data').describe('logs database, spool and mailbox; relative to the config file'),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*\$?$/i, { message: 'a user name' })
    .optional()
    .describe('started as root: bind the listeners, then run as this user (the data directory is given to it)'),
  workers: z
    .union([z.number().int().min(1).max(64), z.literal('auto')])
    .default(1)
    // `auto`: one worker per processor this process may run on (cgroup and affinity limits included).
    .transform((w) => (w === 'auto' ? Math.min(64, Math.max(1, availableParallelism())) : w))
    .describe('processes sharing the listeners (node cluster), or auto (one per core); session limits apply per worker'),
  hostname: z.string().regex(/^[A-Za-z0-9.-]+$/).default('smtpwall').describe('name in the gateway\'s own replies'),
  listeners: z.array(listener).min(1, { message: 'at least one listener is needed' }).describe('where the gateway accepts SMTP, and where each session goes'),
  profiles: z
    .strictObject({
      antivirus: z.record(z.string(), antivirusProfile).default({}).describe('antivirus profiles by name: actions for signature and analysis verdicts'),
      'file-blocking': z.record(z.string(), fileBlockingProfile).default({}).describe('file-blocking profiles by name'),
      'data-filtering': z.record(z.string(), dataFilteringProfile).default({}).describe('data-filtering profiles by name'),
    })
    .prefault({}),
  'profile-groups': z.record(z.string(), profileRefs.omit({ group: true })).default({}).describe('named sets of profiles a rule can name with group'),
  rules: z.array(rule).default([]).describe('security rules, in order: the first whose match fits the transaction applies its profiles'),
  'default-rule': profileRefs
    .prefault({})
    .describe('profiles for a transaction no rule matches (antivirus: the built-in "default", block)'),
  engines: z
    .strictObject({
      clamd: z
        .strictObject({
          address: z
            .string()
            .refine((a) => a.startsWith('/') || parseHostPort(a) !== null, { message: 'expected a unix socket path (/run/clamav/clamd.ctl) or host:port' })
            .describe("clamd's LocalSocket path or TCPAddr:TCPSocket"),
          timeout: duration('30s', "wait for clamd's verdict after an object's last byte"),
          objects: z
            .enum(['all', 'message', 'files'])
            .default('all')
            .describe('what clamd scans: the raw message (it decodes MIME itself), each decoded file, or both'),
        })
        .optional()
        .describe('ClamAV clamd over INSTREAM; absent: not used'),
      analysis: z
        .strictObject({
          enabled: z.boolean().default(true).describe('static analysis of executables, documents, scripts, shortcuts, disk images'),
          yara: z.array(z.string()).default([]).describe('YARA rule files run on every file (meta score: points, default 70; description: the reason)'),
          hold: duration('2s', 'longest wait for a verdict at the end of a message; past it the profile\'s analysis-on-timeout applies and the analysis goes on'),
          threads: int(1, 1, 16, 'worker threads the analyzers run in, off the event loop (started with the first file)'),
          queue: int(100, 1, 100_000, 'files waiting for a worker beyond which new ones fail analysis (the profile\'s on-error applies)'),
          timeout: duration('10s', 'longest analysis of one file; past it its worker is replaced and the profile\'s on-error applies'),
        })
        .prefault({})
        .describe('the local analysis engine and its verdict store'),
      'seven-zip': z
        .strictObject({
          path: z.string().default('auto').describe('7-Zip (7zz) to unpack 7z archives: auto (/usr/bin/7zz when installed), off, or a path'),
          timeout: duration('30s', 'longest 7-Zip run on one archive; past it the process is killed and the archive reported'),
          memory: size('512MiB', 'address space each 7-Zip process may use (a crafted 7z can ask for gigabytes); past it the archive is reported'),
        })
        .prefault({})
        .describe('7z archives are unpacked by 7-Zip in a separate process; without it they are only recognised'),
      bsdtar: z
        .strictObject({
          path: z.string().default('auto').describe("libarchive's bsdtar, which unpacks RAR 4 and 5: auto (/usr/bin/bsdtar when installed, apt-get install libarchive-tools), off, or a path"),
          timeout: duration('30s', 'longest bsdtar run on one archive; past it the process is killed and the archive reported'),
        })
        .prefault({})
        .describe('RAR archives are unpacked by bsdtar in a separate process (under engines.seven-zip.memory); without it they are only recognised (ARCHIVE_UNSUPPORTED)'),
      signatures: z
        .strictObject({
          'hash-lists': z.array(z.string()).default([]).describe('hash-list files (sha256:/md5: lines)'),
          databases: z
            .array(z.string())
            .default([])
            .describe('ClamAV signature files by extension: .ndb body signatures, .hdb/.hsb hashes'),
        })
        .prefault({}),
    })
    .prefault({}),
  limits: z
    .strictObject({
      'max-message-size': size('25MiB', 'largest message accepted; advertised with SIZE'),
      'max-line-length': int(998, 78, 1_000_000, 'longest message line in bytes without CRLF (RFC 5321: 998)'),
      'max-command-line': int(2048, 512, 65536, 'longest command line in bytes with CRLF'),
      'max-recipients': int(1000, 1, 100_000, 'recipients per transaction'),
      'max-sessions': int(1000, 1, 1_000_000, 'concurrent sessions per listener'),
      'max-sessions-per-client': int(100, 1, 1_000_000, 'concurrent sessions from one client address'),
      'max-bad-commands': int(20, 1, 10_000, 'unrecognised or malformed commands before 421'),
      'stress-occupancy': int(80, 1, 100, 'percent of max-sessions at which a listener enters stress mode: idle clients get stress-client-idle, one bad command ends a session, and when full the longest idle session without a transaction is closed (421) to make room'),
      'spool-memory': size('1MiB', 'store-and-forward: message bytes kept in memory before spooling to a temp file'),
      'mime-depth': int(20, 1, 1000, 'deepest MIME nesting inspected'),
      'mime-parts': int(1000, 1, 1_000_000, 'most MIME parts inspected per message'),
      'archive-depth': int(10, 0, 100, 'archives inside archives unpacked (0: none unpacked)'),
      'archive-files': int(10_000, 1, 10_000_000, 'archive members unpacked per message'),
      'archive-unpacked-size': size('200MiB', 'bytes unpacked from archives per message'),
      'archive-ratio': int(100, 2, 1_000_000, 'unpacked:packed ratio of one member (checked past 1 MiB) beyond which it is a bomb'),
      'archive-time': duration('10s', 'time spent unpacking per message'),
      'archive-size': size('50MiB', 'archive bytes kept in memory to unpack, all archives of a message together; one that does not fit is scanned whole only'),
    })
    .prefault({}),
  quarantine: z
    .strictObject({
      'max-age': duration('30d', 'quarantined messages older than this are deleted'),
      'max-size': size('1GiB', 'beyond this total, the oldest quarantined messages are deleted'),
      digest: z
        .strictObject({
          every: duration('24h', 'how often each recipient gets the list of what was held for them since the last digest'),
          from: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, { message: 'an address, e.g. postmaster@example.com' }).describe('sender of the digests'),
          contact: z.string().min(1).optional().describe('whom the digest tells users to ask for a release (default: the from address)'),
          listener: z.string().optional().describe("the listener whose upstream delivers the digests (default: the first with an upstream)"),
        })
        .optional()
        .describe('scheduled digests to recipients; absent: only `smtpwall quarantine digest --send`'),
    })
    .prefault({})
    .describe('retention of DATA-DIR/quarantine'),
  'log-database': z
    .strictObject({
      'on-failure': z
        .enum(['continue', 'tempfail'])
        .default('continue')
        .describe('when records cannot be written: continue (mail flows, records wait in memory) or tempfail (451 for new transactions until every record is written)'),
      buffer: int(10_000, 0, 10_000_000, 'records kept in memory while the database cannot be written; beyond, they are counted as dropped'),
      'max-size': size('0', 'the database does not grow beyond this (0: no limit); past it writes fail and on-failure applies'),
      'lock-wait': duration('100ms', 'longest wait for a lock another process holds on the database, per write (the gateway waits on no one longer)'),
      retention: z
        .union([z.string(), z.number()])
        .default('90d')
        .transform((v, ctx) => {
          const n = v === 0 || v === '0' ? 0 : parseDuration(v);
          if (n === null) {
            ctx.addIssue({ code: 'custom', message: 'expected a duration such as 90d or 12h, or 0 to keep records forever' });
            return z.NEVER;
          }
          return n;
        })
        .meta({ description: 'traffic, threat and sighting records older than this are deleted, in small batches in the background (0: kept forever)', unit: 'duration' }),
    })
    .prefault({})
    .describe('the local log database (DATA-DIR/logs.sqlite) and what happens when it cannot be written'),
  store: z
    .strictObject({
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\//, { message: 'expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE' })
        .describe('PostgreSQL shared by every instance: logs, audit, verdicts and sightings, quarantine, captures (a password is better in PGPASSWORD or ~/.pgpass than here)'),
      pool: int(4, 1, 1000, 'connections per gateway process, at most (each worker has its own pool, plus one that listens for verdicts; writes need one at a time)'),
      'statement-timeout': duration('5s', 'longest a statement may run before PostgreSQL cancels it (a write that fails this way is retried like any other failure)'),
      'connect-timeout': duration('5s', 'longest wait for a new connection'),
      tls: z
        .strictObject({
          mode: z.enum(['off', 'require', 'verify']).default('off').describe('off: plain TCP; require: TLS, any certificate; verify: TLS, the server certificate checked against ca and the host name'),
          ca: z.string().optional().describe('PEM file of the CA that signed the server certificate (verify)'),
          cert: z.string().optional().describe('PEM client certificate, for servers that authenticate clients by certificate'),
          key: z.string().optional().describe('PEM private key of cert'),
        })
        .prefault({})
        .describe('TLS to PostgreSQL'),
      'on-failure': z
        .enum(['continue', 'tempfail'])
        .default('continue')
        .describe('when records cannot be written: continue (mail flows, records wait in memory, in order) or tempfail (451 for new transactions until every record is written)'),
      buffer: int(100_000, 0, 10_000_000, 'records kept in memory, in order, while PostgreSQL cannot be written; beyond, they are counted as dropped (and logged)'),
      'down-at-start': z
        .enum(['start', 'refuse'])
        .default('start')
        .describe('PostgreSQL unreachable when the gateway starts: start anyway (records wait in memory; tried every second) or refuse to start'),
    })
    .optional()
    .describe('the shared store (README "Many gateways, one store"); absent: the embedded SQLite database in data-dir'),
  instance: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { message: 'letters, digits, . _ - only (at most 64)' })
    .optional()
    .describe("this gateway's name, on every record it writes and shown by smtpwall logs (default: the host name)"),
  'log-forwarding': z
    .array(
      z
        .strictObject({
          name: z.string().min(1).describe('named in warnings about this forwarder'),
          type: z.enum(['syslog', 'file']).describe('syslog (UDP, TCP with octet counting, unix socket) or file (appended; reopened on reload for logrotate)'),
          address: z
            .string()
            .regex(/^(udp|tcp):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$|^unix:\/\/\/\S+$/, { message: 'expected udp://host:port, tcp://host:port or unix:///path' })
            .optional()
            .describe('syslog: where to send'),
          path: z.string().optional().describe('file: where to append'),
          format: z.enum(['rfc5424', 'cef', 'json']).default('rfc5424').describe('RFC 5424 with structured data, ArcSight CEF, or one JSON object per line'),
          facility: z.enum(['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7']).default('mail').describe('syslog facility'),
        })
        .refine((f) => (f.type === 'syslog' ? f.address !== undefined : f.path !== undefined), { message: 'syslog needs address, file needs path' }),
    )
    .default([])
    .describe('copies of every traffic and threat record, besides the local database'),
  'debug-peers': z
    .array(cidr)
    .default([])
    .describe("client or upstream addresses/CIDRs whose sessions are transcribed in the process log, every command and reply (AUTH masked, no message data), like Postfix's debug_peer_list"),
  capture: z
    .strictObject({
      when: z.enum(['threats', 'all', 'off']).default('threats').describe('keep the packet capture of sessions with a threat record (threats), of every session (all), or none (off)'),
      'max-bytes': size('1MiB', 'payload kept per session, both legs together; past it only commands and replies are kept and the rest is a gap'),
      retention: duration('30d', 'captures older than this are deleted'),
    })
    .prefault({})
    .describe('packet captures of both legs (smtpwall capture show|export, GET /api/v1/transactions/ID/capture.pcap)'),
  admin: z
    .strictObject({
      listen: z
        .union([z.literal('off'), hostPort])
        .default('off')
        .describe('address:port of the admin plane: HTTP API and /metrics (off: none)'),
      tls: z
        .strictObject({ cert: z.string().describe('PEM certificate file'), key: z.string().describe('PEM private key file') })
        .optional()
        .describe('serve HTTPS instead of HTTP'),
      users: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, { message: 'letters, digits, . _ @ - only' }).describe('login name, named in audit records'),
            'password-hash': z.string().regex(/^scrypt\$/, { message: 'expected the output of "smtpwall admin hash-password"' }).optional().describe('from smtpwall admin hash-password'),
            'token-hash': z.string().regex(/^scrypt\$/, { message: 'expected the output of "smtpwall admin hash-password"' }).optional().describe('a bearer token for scripts, hashed the same way'),
            'password-file': z
              .string()
              .optional()
              .describe('instead of password-hash: a file (relative to data-dir) whose first line is the password; written with a random one (mode 0600) at start when missing, so a first login needs no hash'),
            role: z.enum(['admin', 'viewer']).default('viewer').describe('admin changes things (release, delete, verdicts, reload); viewer only reads'),
          }),
        )
        .default([])
        .describe('who may use the admin plane'),
      'metrics-auth': z.boolean().default(true).describe('/metrics needs a configured user (any role) like the API; false: open to anyone who reaches the address'),
      'session-idle': duration('30m', 'a console login ends after this long without a request'),
    })
    .prefault({})
    .refine((a) => a.listen === 'off' || a.users.length > 0, { message: 'admin.listen needs at least one user in admin.users' })
    .refine((a) => a.users.every((u) => !(u['password-hash'] && u['password-file'])), { message: 'a user has either password-hash or password-file, not both' })
    .describe('the admin plane (README "Admin plane")'),
  timeouts: z
    .strictObject({
      'client-idle': duration('5m', 'waiting for the next command (the whole line) or for more message data'),
      'stress-client-idle': duration('10s', 'waiting for the next command while the listener is in stress mode (limits.stress-occupancy)'),
      message: duration('10m', 'receiving one message, from 354 (or the first BDAT) to its end: slow senders are cut off'),
      'upstream-connect': duration('30s', 'connecting to the upstream and receiving its greeting'),
      'upstream-reply': duration('5m', 'waiting for any upstream reply, or for the upstream to take message data (RFC 5321 §4.5.3.2 allows 10m for end of data)'),
      scan: duration('30s', 'deadline for the verdict on one message'),
      'shutdown-grace': duration('30s', 'on SIGTERM: time given to transactions in flight'),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type RuleConfig = Config['rules'][number];
export type AntivirusProfile = Config['profiles']['antivirus'][string];
export type FileBlockingProfile = Config['profiles']['file-blocking'][string];
export type DataFilteringProfile = Config['profiles']['data-filtering'][string];
export type DlpPatternConfig = DataFilteringProfile['patterns'][number];
export type ProfileRefs = Config['default-rule'];
export type Limits = Config['limits'];
export type Timeouts = Config['timeouts'];

/** The profile used when no rule names one (and by rules that name none). */
export const BUILTIN_ANTIVIRUS_PROFILE = 'default';
