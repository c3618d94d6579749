/**
 * A manager's resource budget: the sum of the memory and CPU limits of the executions it runs may not
 * pass the configured budget. An execution that does not fit waits until enough is released.
 */
export class Budget {
  private memoryMb = 0;
  private cpus = 0;
  private readonly waiting: { memoryMb: number; cpus: number; resolve: () => void }[] = [];

  constructor(
    readonly maxMemoryMb: number,
    readonly maxCpus: number,
  ) {}

  fits(memoryMb: number, cpus: number): boolean {
    // An execution larger than the whole budget still runs alone, rather than never.
    const alone = this.memoryMb === 0 && this.cpus === 0;
    return alone || (this.memoryMb + memoryMb <= this.maxMemoryMb && this.cpus + cpus <= this.maxCpus + 1e-9);
  }

  async acquire(memoryMb: number, cpus: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(memoryMb, cpus)) {
      this.memoryMb += memoryMb;
      this.cpus += cpus;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push({ memoryMb, cpus, resolve }));
  }

  release(memoryMb: number, cpus: number): void {
    this.memoryMb = Math.max(0, this.memoryMb - memoryMb);
    this.cpus = Math.max(0, this.cpus - cpus);
    while (this.waiting[0] && this.fits(this.waiting[0].memoryMb, this.waiting[0].cpus)) {
      const next = this.waiting.shift()!;
      this.memoryMb += next.memoryMb;
      this.cpus += next.cpus;
      next.resolve();
    }
  }

  get used(): { memoryMb: number; cpus: number } {
    return { memoryMb: this.memoryMb, cpus: this.cpus };
  }
}
