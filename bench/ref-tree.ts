/**
 * A git ref checked out beside this tree for a before/after benchmark (bench/ab.ts,
 * bench/gc-count.ts): a temporary detached worktree that shares this tree's node_modules and
 * native build, removed again whatever happens in between.
 */

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export async function withRefTree<T>(root: string, tree: string, ref: string, use: (tree: string) => Promise<T>): Promise<T> {
  execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', tree, ref], { stdio: 'ignore' });
  try {
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
    if (existsSync(join(root, 'build'))) cpSync(join(root, 'build'), join(tree, 'build'), { recursive: true });
    return await use(tree);
  } finally {
    execFileSync('git', ['-C', root, 'worktree', 'remove', '--force', tree], { stdio: 'ignore' });
  }
}
