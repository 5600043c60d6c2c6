/**
 * Gathers fires taken off the queue at the same time into groups governed in one transaction each (group
 * commit): an idle scheduler governs a lone fire at once, a burst of due triggers shares transactions. A
 * group that fails is retried fire by fire, so one bad fire never holds back the others.
 */
export interface FireBatcherOptions<T, R> {
  /** Higher goes first when items wait (a trigger's `priority`). @defaultValue every item equal */
  priorityOf?: (item: T) => number;
  /** Handles one group; returns one result per item, in order. */
  run: (items: T[]) => Promise<R[]>;
  /** Most fires per group. @defaultValue `500` */
  maxBatch: number;
  /** Groups in flight at once (each holds a Postgres connection). @defaultValue `2` */
  maxInFlight: number;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class FireBatcher<T, R> {
  private queue: Array<Pending<T, R>> = [];
  private inFlight = 0;

  constructor(private readonly options: FireBatcherOptions<T, R>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    const priorityOf = this.options.priorityOf;
    // Stable: equal priorities keep their arrival order.
    if (priorityOf && this.inFlight < this.options.maxInFlight && this.queue.length > 1)
      this.queue.sort((a, b) => priorityOf(b.item) - priorityOf(a.item));
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const group = this.queue.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void this.runGroup(group);
    }
  }

  private async runGroup(group: Array<Pending<T, R>>): Promise<void> {
    try {
      const results = await this.options.run(group.map((p) => p.item));
      group.forEach((pending, index) => pending.resolve(results[index] as R));
    } catch (error) {
      if (group.length === 1) group[0]!.reject(error);
      else {
        for (const pending of group) {
          try {
            pending.resolve((await this.options.run([pending.item]))[0] as R);
          } catch (single) {
            pending.reject(single);
          }
        }
      }
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }
}
