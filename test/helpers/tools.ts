/** Whether a command is on the PATH (tests skip with a message when a reference tool is missing). */
import { spawnSync } from 'node:child_process';

export function hasCommand(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}
