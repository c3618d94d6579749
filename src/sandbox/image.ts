import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const RUNTIME_REPOSITORY = 'braindrill-runtime';

/**
 * The runtime image tag: the first 12 hex digits of sha256 over every file in images/runtime/, in
 * byte order of their names. images/build.sh computes the same, so a changed recipe means a new tag.
 */
export function runtimeImageTag(recipeDir: string): string {
  const hash = createHash('sha256');
  const names = readdirSync(recipeDir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) hash.update(readFileSync(path.join(recipeDir, name)));
  return `${RUNTIME_REPOSITORY}:${hash.digest('hex').slice(0, 12)}`;
}
