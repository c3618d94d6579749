import { randomUUID } from 'node:crypto';
import type { Language } from '../languages/language.ts';
import type { LanguageRegistry } from '../languages/registry.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ContainerRuntime, SandboxContainer } from './container-runtime.ts';
import { initialMemoryMb } from './plan.ts';
import { startContainer, type ReadyContainer } from './run-execution.ts';

export interface WarmPoolOptions {
  languages: LanguageRegistry;
  /** Languages kept warm from the start, one container each; others warm up once they are used. */
  initial: string[];
  /** Most containers kept waiting for one language. */
  maxPerLanguage: number;
  /** Sum of the memory limits of waiting containers may not pass this. */
  memoryBudgetMb: number;
  /** Container starts in flight at once: more only adds latency on a small machine. */
  startSlots: number;
}

/** How long demand is remembered when sizing a language's pool. */
const DEMAND_WINDOW_MS = 30_000;
/** A taken container is replaced when its job ends, or after this long if the job runs on. */
const REFILL_DELAY_MS = 100;

export interface WarmPoolDeps {
  runtime: ContainerRuntime;
  metrics: Metrics;
  log: Logger;
}

/** A container being started for the pool; a job that finds none waiting may claim it. */
interface Start {
  label: string;
  memoryMb: number;
  /** Set when a job claimed it: the container goes to that job instead of the waiting list. */
  claim: ((container: ReadyContainer | undefined) => void) | null;
}

/** A started container waiting for a job, and how to stop watching it die. */
interface Waiting {
  ready: ReadyContainer;
  unwatch: () => void;
}

/**
 * Containers created and started ahead of demand, each waiting for exactly one job on its stdin. A job
 * takes one and the container is destroyed afterwards as usual; the pool refills in the background. A
 * waiting container that dies is dropped and replaced. One container never serves two executions.
 */
export class WarmPool {
  private readonly ready = new Map<string, Waiting[]>();
  private readonly starting = new Map<string, Start[]>();
  private readonly demand = new Map<string, number[]>();
  private readonly labels = new Set<string>();
  private inFlight = 0;
  private closed = false;
  private pooledMemoryMb = 0;
  /** After a failed start (image gone, Docker down) the pool waits before trying again. */
  private pausedUntil = 0;

  constructor(
    private readonly deps: WarmPoolDeps,
    private readonly options: WarmPoolOptions,
  ) {
    for (const id of options.initial) this.demand.set(id, [Date.now()]);
  }

  start(): void {
    this.refill();
  }

  /**
   * A container for `language`: one waiting, else one the pool is starting already (it started earlier,
   * so it is ready sooner than a new one, and a second start would only slow both down), else undefined
   * (the caller starts one cold). The replacement is started when the job ends (`done`), or after
   * REFILL_DELAY_MS for a longer job: starting a container takes more CPU than a short job, and on a
   * small machine it would slow that very job down.
   */
  acquire(language: Language): Promise<ReadyContainer | undefined> {
    this.noteDemand(language.id);
    const taken = this.ready.get(language.id)?.shift();
    if (taken) {
      taken.unwatch();
      this.pooledMemoryMb -= initialMemoryMb(language);
      setTimeout(() => this.refill(), REFILL_DELAY_MS).unref();
      return Promise.resolve(taken.ready);
    }
    const pending = this.starting.get(language.id)?.find((start) => start.claim === null);
    this.refill();
    if (!pending) return Promise.resolve(undefined);
    this.pooledMemoryMb -= pending.memoryMb;
    return new Promise((resolve) => (pending.claim = resolve));
  }

  /** A job that took a container (or started one cold) has ended: top the pool up now. */
  done(): void {
    this.refill();
  }

  /** Whether a container label belongs to this pool (the reaper must leave it alone). */
  owns(label: string): boolean {
    return this.labels.has(label);
  }

  forget(label: string): void {
    this.labels.delete(label);
  }

  get size(): number {
    let total = 0;
    for (const list of this.ready.values()) total += list.length;
    return total;
  }

  private noteDemand(languageId: string): void {
    const now = Date.now();
    const recent = (this.demand.get(languageId) ?? []).filter((t) => now - t < DEMAND_WINDOW_MS);
    recent.push(now);
    this.demand.set(languageId, recent.slice(-1000));
  }

  /** One waiting container per language in use, more when requests arrive faster than one per 2 s. */
  private target(languageId: string): number {
    const now = Date.now();
    const recent = (this.demand.get(languageId) ?? []).filter((t) => now - t < DEMAND_WINDOW_MS);
    if (recent.length === 0 && !this.options.initial.includes(languageId)) return 0;
    const perSecond = recent.length / (DEMAND_WINDOW_MS / 1000);
    return Math.min(this.options.maxPerLanguage, Math.max(1, Math.ceil(perSecond * 2)));
  }

  private refill(): void {
    if (this.closed || Date.now() < this.pausedUntil) return;
    for (const language of this.options.languages.languages) {
      // Claimed starts are a job's already, not the pool's.
      const unclaimed = (this.starting.get(language.id) ?? []).filter((start) => start.claim === null).length;
      const have = (this.ready.get(language.id)?.length ?? 0) + unclaimed;
      const memory = initialMemoryMb(language);
      for (let missing = this.target(language.id) - have; missing > 0; missing--) {
        if (this.inFlight >= this.options.startSlots) return;
        if (this.pooledMemoryMb + memory > this.options.memoryBudgetMb) break;
        this.launch(language, memory);
      }
    }
  }

  private launch(language: Language, memoryMb: number): void {
    const start: Start = { label: `warm-${randomUUID()}`, memoryMb, claim: null };
    const starts = this.starting.get(language.id) ?? [];
    starts.push(start);
    this.starting.set(language.id, starts);
    this.inFlight++;
    this.pooledMemoryMb += memoryMb;
    this.labels.add(start.label);
    let created: SandboxContainer | undefined;
    const began = performance.now();
    startContainer(this.deps.runtime, language, start.label, (c) => (created = c))
      .then((ready) => {
        this.deps.metrics.containerStart.labels(language.id).observe((performance.now() - began) / 1000);
        if (start.claim) return start.claim(ready);
        if (this.closed) return this.discard(ready, memoryMb);
        const list = this.ready.get(language.id) ?? [];
        // A container that dies while waiting is dropped; the refill replaces it.
        const waiting: Waiting = {
          ready,
          unwatch: ready.channel.onClose(() => {
            const index = list.indexOf(waiting);
            if (index < 0) return;
            list.splice(index, 1);
            waiting.unwatch();
            this.discard(ready, memoryMb);
            this.refill();
          }),
        };
        list.push(waiting);
        this.ready.set(language.id, list);
      })
      .catch((error: unknown) => {
        this.labels.delete(start.label);
        if (created) void created.remove();
        this.pausedUntil = Date.now() + 5000;
        this.deps.log.warn({ err: error, language: language.id }, 'could not start a warm container');
        // A job that claimed this start goes cold instead; its memory was no longer the pool's.
        if (start.claim) start.claim(undefined);
        else this.pooledMemoryMb -= memoryMb;
      })
      .finally(() => {
        this.inFlight--;
        starts.splice(starts.indexOf(start), 1);
        // Back off after a failure instead of spinning: the next acquire() or refill tick retries.
        setTimeout(() => this.refill(), 50).unref();
      });
  }

  private discard(ready: ReadyContainer, memoryMb: number): void {
    this.pooledMemoryMb -= memoryMb;
    this.labels.delete(ready.label);
    ready.channel.close();
    void ready.container.remove();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (let waited = 0; this.inFlight > 0 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    const all = [...this.ready.entries()].flatMap(([, list]) => list);
    this.ready.clear();
    await Promise.all(
      all.map(async ({ ready, unwatch }) => {
        unwatch();
        ready.channel.close();
        this.labels.delete(ready.label);
        await ready.container.remove();
      }),
    );
    this.pooledMemoryMb = 0;
  }
}
