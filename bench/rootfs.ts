import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execOk } from './exec.ts';

const MARKER = '.braindrill-bench-complete';
const EXPORT_TIMEOUT_MS = 15 * 60_000;

export function rootfsDir(image: string): string {
  const tag = image.includes(':') ? image.slice(image.lastIndexOf(':') + 1) : image;
  return `/var/tmp/braindrill-bench-rootfs-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/**
 * The image's root filesystem as a plain directory, exported once (`docker create` + `docker export | tar
 * -x`) and cached by tag: a half-done export never becomes the cache.
 */
export async function ensureRootfs(image: string, label: string): Promise<string> {
  const dir = rootfsDir(image);
  if (existsSync(`${dir}/${MARKER}`)) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const created = await execOk('docker', ['create', '--label', label, image]);
  const id = created.stdout.trim();
  try {
    await execOk('bash', ['-o', 'pipefail', '-c', 'docker export "$1" | tar -x -C "$2"', 'export', id, partial], { timeoutMs: EXPORT_TIMEOUT_MS });
    writeFileSync(`${partial}/${MARKER}`, `${image}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
    return dir;
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  } finally {
    await execOk('docker', ['rm', '-f', id]).catch(() => undefined);
  }
}
