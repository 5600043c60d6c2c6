import { captureContext, runInGroupContext, type Context } from '@warden/observability';

/**
 * Gathers items submitted concurrently into groups handled by one call each (group commit): while the groups
 * in flight run, new items queue up, so a busy service commits many items per transaction and an idle one
 * commits each at once, with no added wait. Used by the supervisor (decisions) and the scheduler (fires).
 * With tracing on, a group runs under the span of its first item, the others' spans reachable as links (see
 * `runInGroupContext`), whichever call happened to start the group.
 */
export interface GroupCommitterOptions<T, R> {
  /** Handles one group; returns one result per item, in order. */
  run: (items: T[]) => Promise<R[]>;
  /** Most items per group. */
  maxGroupSize: number;
  /** Groups running at once (each typically holds a Postgres connection). */
  maxInFlight: number;
  /** Higher goes first while items wait; equal priorities keep arrival order. @defaultValue every item equal */
  priorityOf?: (item: T) => number;
  /**
   * What a failed group does: `reject` fails every item of the group with the error; `retry-each` runs the
   * items again one by one, so one bad item never holds back the others. @defaultValue `'reject'`
   */
  onGroupFailure?: 'reject' | 'retry-each';
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  /** The submitter's trace context (tracing on only). */
  context: Context | undefined;
}

export class GroupCommitter<T, R> {
  private readonly queue: Array<Pending<T, R>> = [];
  private inFlight = 0;

  constructor(private readonly options: GroupCommitterOptions<T, R>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject, context: captureContext() });
      this.pump();
    });
  }

  /** Items waiting for a group. */
  get waiting(): number {
    return this.queue.length;
  }

  private pump(): void {
    const { priorityOf, maxInFlight, maxGroupSize } = this.options;
    if (priorityOf && this.inFlight < maxInFlight && this.queue.length > 1)
      this.queue.sort((a, b) => priorityOf(b.item) - priorityOf(a.item));
    while (this.inFlight < maxInFlight && this.queue.length > 0) {
      const group = this.queue.splice(0, maxGroupSize);
      this.inFlight += 1;
      void this.runGroup(group);
    }
  }

  private async runGroup(group: Array<Pending<T, R>>): Promise<void> {
    try {
      const results = await runInGroupContext(
        group.map((p) => p.context),
        () => this.options.run(group.map((p) => p.item)),
      );
      group.forEach((pending, index) => pending.resolve(results[index] as R));
    } catch (error) {
      if (this.options.onGroupFailure === 'retry-each' && group.length > 1) await this.runOneByOne(group);
      else for (const pending of group) pending.reject(error);
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }

  private async runOneByOne(group: Array<Pending<T, R>>): Promise<void> {
    for (const pending of group) {
      try {
        const [result] = await runInGroupContext([pending.context], () => this.options.run([pending.item]));
        pending.resolve(result as R);
      } catch (error) {
        pending.reject(error);
      }
    }
  }
}
