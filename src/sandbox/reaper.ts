import type Docker from 'dockerode';
import type { Logger } from '../observability/logger.ts';
import { Label } from './container.ts';
import { removeContainer } from './runner.ts';

/**
 * Removes sandbox containers labelled with this node's id that no live execution owns: leftovers of an
 * earlier process of the same node, or of a runner that crashed. Never touches another node's.
 */
export async function reapContainers(
  docker: Docker,
  nodeId: string,
  log: Logger,
  isLive: (executionId: string) => boolean = () => false,
): Promise<number> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${Label.node}=${nodeId}`] } });
  const orphans = containers.filter((c) => !isLive(c.Labels[Label.execution] ?? ''));
  await Promise.all(orphans.map((c) => removeContainer(docker.getContainer(c.Id), log)));
  if (orphans.length > 0) log.warn({ count: orphans.length }, 'removed leftover sandbox containers of this node');
  return orphans.length;
}
