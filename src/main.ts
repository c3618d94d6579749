#!/usr/bin/env node
import { BraindrillError } from './errors.ts';
import { startNode } from './node/start-node.ts';
import { loadSettings } from './settings.ts';

/** The only place that exits the process. */
async function main(): Promise<void> {
  const settings = loadSettings();
  const node = await startNode(settings);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    node.log.info({ signal }, 'shutting down: draining');
    node.close().then(
      () => process.exit(0),
      (error: unknown) => {
        node.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const message = error instanceof BraindrillError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`braindrill failed to start: ${message}\n`);
  process.exit(1);
});
