import type { Logger } from '../observability/logger.ts';
import type { ContainerRuntime } from './container-runtime.ts';

/**
 * Removes sandbox containers labelled with `nodeId` that no live execution owns: leftovers of an earlier
 * process of the same node, of a runner that crashed, or of a node known to be dead. Never touches
 * another live node's.
 */
export async function reapContainers(
  runtime: ContainerRuntime,
  nodeId: string,
  log: Logger,
  isLive: (execution: string) => boolean = () => false,
): Promise<number> {
  const orphans = (await runtime.list(nodeId)).filter((c) => !isLive(c.execution));
  await Promise.all(orphans.map((c) => runtime.remove(c.id)));
  if (orphans.length > 0) log.warn({ count: orphans.length, node: nodeId }, 'removed leftover sandbox containers');
  return orphans.length;
}
