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
  /**
   * Higher goes first while items wait (within their key, with `groupKeyOf`); equal priorities keep arrival
   * order. @defaultValue every item equal
   */
  priorityOf?: (item: T) => number;
  /**
   * Items of one key share groups, never a group with another key's items, and a key with no group in flight
   * goes before one that has (else the key waiting longest). The supervisor keys events by tenant: a group then
   * locks one tenant's audit chain head, so groups of different tenants commit side by side instead of each
   * waiting for the one group that holds every tenant's chain. @defaultValue one key for all items
   */
  groupKeyOf?: (item: T) => string;
  /**
   * A group starts at the end of the event-loop turn its first item came in (`setImmediate`) instead of at
   * once, so the items submitted in one turn — requests read off the network together — share it even while a
   * group could start. No item waits past the turn it arrived in. @defaultValue `false`
   */
  gatherWithinTurn?: boolean;
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
  /** Waiting items by key, keys in the order they began waiting (a key leaves once it has none waiting). */
  private readonly queues = new Map<string, Array<Pending<T, R>>>();
  private readonly keysInFlight = new Map<string, number>();
  private inFlight = 0;
  private waitingCount = 0;
  private pumpScheduled = false;

  constructor(private readonly options: GroupCommitterOptions<T, R>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const key = this.options.groupKeyOf?.(item) ?? '';
      const queue = this.queues.get(key);
      const pending = { item, resolve, reject, context: captureContext() };
      if (queue) queue.push(pending);
      else this.queues.set(key, [pending]);
      this.waitingCount += 1;
      if (this.options.gatherWithinTurn) this.pumpAfterTurn();
      else this.pump();
    });
  }

  private pumpAfterTurn(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Items waiting for a group. */
  get waiting(): number {
    return this.waitingCount;
  }

  private pump(): void {
    const { priorityOf, maxInFlight, maxGroupSize } = this.options;
    while (this.inFlight < maxInFlight && this.waitingCount > 0) {
      const key = this.nextKey();
      const queue = this.queues.get(key)!;
      if (priorityOf && queue.length > 1) queue.sort((a, b) => priorityOf(b.item) - priorityOf(a.item));
      const group = queue.splice(0, maxGroupSize);
      if (queue.length === 0) this.queues.delete(key);
      this.waitingCount -= group.length;
      this.inFlight += 1;
      this.keysInFlight.set(key, (this.keysInFlight.get(key) ?? 0) + 1);
      void this.runGroup(group, key);
    }
  }

  /** The first waiting key with no group in flight, else the key waiting longest. */
  private nextKey(): string {
    let first: string | undefined;
    for (const key of this.queues.keys()) {
      if (!this.keysInFlight.has(key)) return key;
      first ??= key;
    }
    return first!;
  }

  private async runGroup(group: Array<Pending<T, R>>, key: string): Promise<void> {
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
      const left = this.keysInFlight.get(key)! - 1;
      if (left === 0) this.keysInFlight.delete(key);
      else this.keysInFlight.set(key, left);
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
