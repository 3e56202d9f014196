/**
 * Who holds a TCP port: for the one line `smtpwall start` prints when its listening address is
 * taken. Linux only, from /proc (net/tcp, net/tcp6 and each process's fd links — what `ss -ltnp`
 * reads); processes of other users are only visible to root. Null when it cannot be told.
 */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function portHolder(port: number): { pid: number; command: string } | null {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, field 9 the socket's inode
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return null;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) {
        let command = '?';
        try {
          command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 120) || readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          // it exited meanwhile
        }
        return { pid: Number(pid), command };
      }
    }
  }
  return null;
}
