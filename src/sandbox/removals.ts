import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from '../observability/logger.ts';
import { Label } from './docker-options.ts';

/** A container whose supervisor finished is gone within this long, or it is removed by force. */
const GRACE_MS = 10_000;
/** Destroyed ids remembered for a removal registered after its event arrived. */
const RECENT_MS = 30_000;
const RECONNECT_MS = 1000;
/** At shutdown, how long pending removals may still take before they are forced. */
const CLOSE_WAIT_MS = 2000;

interface Pending {
  done: () => void;
  timer: NodeJS.Timeout;
}

/**
 * Containers that remove themselves. A sandbox runs with AutoRemove, so once its supervisor has sent
 * the result and exited, dockerd removes it anyway: removing it again by force doubled dockerd's work
 * (~20 ms of CPU per job, ~10% of burst throughput on two cores). Instead, one Docker event stream for
 * this node's containers says when each is destroyed; one that is not gone after GRACE_MS is removed
 * by force, so a removal is never only hoped for.
 */
export class AutoRemovals {
  private readonly pending = new Map<string, Pending>();
  private readonly recent = new Map<string, number>();
  private events: Readable | null = null;
  private closed = false;
  private reconnect: NodeJS.Timeout | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly graceMs = GRACE_MS,
  ) {}

  /** Opens the event stream; until it is open, removals fall back to their grace timer. */
  async start(): Promise<void> {
    if (this.closed) return;
    try {
      const filters = { type: ['container' as const], event: ['destroy'], label: [`${Label.node}=${this.nodeId}`] };
      const events = (await this.docker.getEvents({ filters })) as unknown as Readable;
      this.events = events;
      let partial = '';
      events.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.onEvent(line);
      });
      const retry = () => {
        if (this.events !== events) return;
        this.events = null;
        if (!this.closed) this.reconnect = setTimeout(() => void this.start(), RECONNECT_MS).unref();
      };
      events.on('error', retry);
      events.on('end', retry);
      events.on('close', retry);
    } catch (error) {
      this.log.warn({ err: error }, 'cannot follow Docker events; finished containers are removed by force after a grace period');
      if (!this.closed) this.reconnect = setTimeout(() => void this.start(), RECONNECT_MS * 5).unref();
    }
  }

  /** Resolves when `container`, whose supervisor has exited or is exiting, is gone. */
  expect(container: Docker.Container): Promise<void> {
    if (this.recent.has(container.id)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(container.id);
        this.log.warn({ container: container.id }, 'a finished sandbox container did not remove itself; removing it');
        void forceRemove(container, this.log).finally(resolve);
      }, this.graceMs);
      timer.unref();
      this.pending.set(container.id, { done: resolve, timer });
    });
  }

  private onEvent(line: string): void {
    let id: string | undefined;
    try {
      id = (JSON.parse(line) as { id?: string }).id;
    } catch {
      return;
    }
    if (!id) return;
    const now = Date.now();
    this.recent.set(id, now);
    for (const [old, at] of this.recent) {
      if (now - at < RECENT_MS) break;
      this.recent.delete(old);
    }
    const waiting = this.pending.get(id);
    if (waiting) {
      clearTimeout(waiting.timer);
      this.pending.delete(id);
      waiting.done();
    }
  }

  /** Waits a moment for pending removals, forces the rest, and stops following events. */
  async close(): Promise<void> {
    for (let waited = 0; this.pending.size > 0 && this.events && waited < CLOSE_WAIT_MS; waited += 50) await new Promise((r) => setTimeout(r, 50));
    this.closed = true;
    clearTimeout(this.reconnect);
    const events = this.events;
    this.events = null;
    events?.destroy();
    await Promise.all(
      [...this.pending.entries()].map(async ([id, waiting]) => {
        clearTimeout(waiting.timer);
        this.pending.delete(id);
        await forceRemove(this.docker.getContainer(id), this.log);
        waiting.done();
      }),
    );
  }
}

const statusCode = (error: unknown): number | undefined => (error as { statusCode?: number } | null)?.statusCode;

/**
 * Kill and remove in one call. A container already gone is fine; one being removed by someone else is
 * waited for; anything else (dockerd still starting it, say) is retried with backoff.
 */
export async function forceRemove(container: Docker.Container, log: Logger): Promise<void> {
  for (let attempt = 1; attempt <= 6; attempt++) {
    try {
      await container.remove({ force: true, v: true });
      return;
    } catch (error) {
      if (statusCode(error) === 404) return;
      if (attempt === 6) {
        log.error({ err: error, container: container.id }, 'could not remove sandbox container; the reaper will');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }
}
