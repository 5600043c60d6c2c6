/**
 * Gathers items submitted concurrently into groups handled by one call each (group commit): while the
 * groups in flight run, new items queue up, so a busy worker commits many decisions per transaction and an
 * idle one commits each at once, with no added wait.
 */
export interface GroupCommitterOptions<T, R> {
  /** Handles one group; returns one result per item, in order. */
  run: (items: T[]) => Promise<R[]>;
  /** Most items per group. */
  maxGroupSize: number;
  /** Groups running at once. */
  maxInFlight: number;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommitter<T, R> {
  private readonly queue: Array<Pending<T, R>> = [];
  private inFlight = 0;

  constructor(private readonly options: GroupCommitterOptions<T, R>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Items waiting for a group. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const group = this.queue.splice(0, this.options.maxGroupSize);
      this.inFlight += 1;
      void this.runGroup(group);
    }
  }

  private async runGroup(group: Array<Pending<T, R>>): Promise<void> {
    try {
      const results = await this.options.run(group.map((p) => p.item));
      group.forEach((pending, index) => pending.resolve(results[index] as R));
    } catch (error) {
      for (const pending of group) pending.reject(error);
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }
}
