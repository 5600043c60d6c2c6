/**
 * Group commit for single-event requests: concurrent `POST /v1/events` with one event each share one INSERT
 * (and one WAL flush) instead of one each, so a busy API writes many events per statement and an idle one
 * writes each at once, with no added wait (see GroupCommitter). Each request still answers only after its own
 * event is durable, with its own accepted/duplicate count.
 */
import { insertPendingEvents, type Db } from '@warden/db';
import type { TaskEvent } from '@warden/domain';
import { GroupCommitter } from '@warden/runtime';

export interface EventInserterOptions {
  db: Db;
  /** Requests whose events share one INSERT. @defaultValue `64` */
  maxGroupSize?: number;
  /** INSERTs running at once, each on a pooled connection. @defaultValue `4` */
  maxInFlight?: number;
}

/** Stores a request's events as pending inbox rows; returns those that were new, in order. */
export type EventInserter = (events: readonly TaskEvent[]) => Promise<TaskEvent[]>;

export function createEventInserter(options: EventInserterOptions): EventInserter {
  const { db } = options;
  const singles = new GroupCommitter<TaskEvent, TaskEvent | undefined>({
    run: async (events) => {
      const fresh = new Set(
        (await insertPendingEvents(db, events)).map((event) => `${event.tenant_id}\u0000${event.event_id}`),
      );
      // Two requests with the same event id in one group: the first is the one stored, the second a duplicate
      // (insertPendingEvents counts only an id's first occurrence as inserted).
      return events.map((event) =>
        fresh.delete(`${event.tenant_id}\u0000${event.event_id}`) ? event : undefined,
      );
    },
    maxGroupSize: options.maxGroupSize ?? 64,
    maxInFlight: options.maxInFlight ?? 4,
    // One request's failure (a row Postgres refuses) never becomes its neighbours': they are tried alone.
    onGroupFailure: 'retry-each',
  });
  return async (events) => {
    // A batch is already one statement; grouping it with others would only tie its latency to theirs.
    if (events.length !== 1) return insertPendingEvents(db, events);
    const stored = await singles.submit(events[0]!);
    return stored ? [stored] : [];
  };
}
