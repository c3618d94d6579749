import type { Logger } from '../observability/logger.ts';

/** Periodic chores of one part of a node: each failure is logged and retried on the next tick. */
export class Timers {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly log: Logger) {}

  every(ms: number, task: () => Promise<unknown>, what: string): void {
    const timer = setInterval(() => void task().catch((error: unknown) => this.log.warn({ err: error }, `${what} failed; retrying on the next tick`)), ms);
    timer.unref();
    this.timers.push(timer);
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
  }
}
