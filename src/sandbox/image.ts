import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { DockerUnavailableError, ImageMissingError } from '../errors.ts';

export const RUNTIME_REPOSITORY = 'braindrill-runtime';

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

/** Fails with a message naming the build command when the image is not on this host; never pulls. */
export async function requireImage(docker: Docker, image: string, socket: string): Promise<void> {
  try {
    await docker.getImage(image).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) throw new ImageMissingError(image);
    throw new DockerUnavailableError(socket, error);
  }
}
