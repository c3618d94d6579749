/**
 * A node's resource budget for sandboxes: the sum of the memory and CPU limits of the executions it runs
 * may not pass MANAGER_MEMORY_BUDGET_MB / MANAGER_CPU_BUDGET. An execution larger than the whole budget
 * still runs, alone, rather than never.
 */
export class Budget {
  private memoryMb = 0;
  private cpus = 0;

  constructor(
    readonly maxMemoryMb: number,
    readonly maxCpus: number,
  ) {}

  fits(memoryMb: number, cpus: number): boolean {
    const alone = this.memoryMb === 0 && this.cpus === 0;
    return alone || (this.memoryMb + memoryMb <= this.maxMemoryMb && this.cpus + cpus <= this.maxCpus + 1e-9);
  }

  /** Takes the resources if they fit now; false (nothing taken) otherwise. */
  take(memoryMb: number, cpus: number): boolean {
    if (!this.fits(memoryMb, cpus)) return false;
    this.memoryMb += memoryMb;
    this.cpus += cpus;
    return true;
  }

  release(memoryMb: number, cpus: number): void {
    this.memoryMb = Math.max(0, this.memoryMb - memoryMb);
    this.cpus = Math.max(0, this.cpus - cpus);
  }

  get used(): { memoryMb: number; cpus: number } {
    return { memoryMb: this.memoryMb, cpus: this.cpus };
  }
}
