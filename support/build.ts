import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT_DIR } from '../src/settings.ts';

/** How a node process is started: from source through tsx, or from the build, as deploy.sh runs it. */
export type EntryPoint = 'source' | 'build';

/** Node.js arguments for `entry`, with absolute paths (the build is started from another directory too). */
export function nodeArgs(entry: EntryPoint): string[] {
  return entry === 'build' ? [path.join(ROOT_DIR, 'dist', 'src', 'main.js')] : ['--import', 'tsx', path.join(ROOT_DIR, 'src', 'main.ts')];
}

let built: Promise<void> | null = null;

/** `npm run build` once per process (incremental: a few seconds when dist/ is current). */
export function ensureBuilt(): Promise<void> {
  built ??= promisify(execFile)(process.execPath, [path.join(ROOT_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT_DIR,
    timeout: 180_000,
  }).then(
    () => undefined,
    (error: { stdout?: string; message: string }) => {
      throw new Error(`npm run build failed: ${error.stdout?.trim() || error.message}`);
    },
  );
  return built;
}
