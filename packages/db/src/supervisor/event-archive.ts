/**
 * The event archive: every decided event as received, with the task context its policy saw and the
 * decision, written in the decision's own transaction. Natively partitioned by UTC day of `decided_at`:
 * partitions are created ahead and dropped whole once past the retention (instant, no vacuum), by the
 * supervisor's archive maintenance. Backtests read it in the original per-task order.
 */
import { sql } from 'kysely';
import type { ArchivedEvent, DecisionType, TaskEvent, TaskStatus } from '@warden/domain';
import type { QueryExecutor } from '../database.js';

export interface ArchivedEventRecord {
  tenant_id: string;
  event_id: string;
  task_id: string;
  event_type: string;
  inbox_id: string;
  source: string;
  trace_id: string | null;
  event_ts: Date;
  received_at: Date;
  payload: Record<string, unknown>;
  task_context: { status: string | null; metadata: Record<string, unknown>; retry_count: number };
  running_tasks: Array<{ task_id: string; resources: string[] }>;
  decision_id: string;
  decision_type: string;
  policy: string;
  policy_version: string;
  finding_codes: string[];
  would_have: string | null;
  decided_at: Date;
}

/** Writes the records; part of the caller's decision transaction. */
export async function archiveDecidedEvents(
  trx: QueryExecutor,
  records: readonly ArchivedEventRecord[],
): Promise<void> {
  if (records.length === 0) return;
  await archiveStatement(records).execute(trx);
}

/** The INSERT of `archiveDecidedEvents`, to run on its own or inside a larger statement. */
export function archiveStatement(records: readonly ArchivedEventRecord[]) {
  // One JSON document for the whole group (see `insertPendingEvents`); dates travel as ISO strings.
  return sql`
    insert into event_archive (tenant_id, event_id, task_id, event_type, inbox_id, source, trace_id, event_ts, received_at,
                               payload, task_context, running_tasks, decision_id, decision_type, policy, policy_version,
                               finding_codes, would_have, decided_at)
    select tenant_id, event_id, task_id, event_type, inbox_id, source, trace_id, event_ts, received_at,
           payload, task_context, running_tasks, decision_id, decision_type, policy, policy_version,
           finding_codes, would_have, decided_at
      from jsonb_to_recordset(${JSON.stringify(records)}::jsonb)
           as r(tenant_id text, event_id text, task_id text, event_type text, inbox_id bigint, source text, trace_id text,
                event_ts timestamptz, received_at timestamptz, payload jsonb, task_context jsonb, running_tasks jsonb,
                decision_id text, decision_type text, policy text, policy_version text, finding_codes text[],
                would_have text, decided_at timestamptz)
    -- A decision is made once per event; a replayed row finds its record there already.
    on conflict do nothing`;
}

const PARTITION_PREFIX = 'event_archive_p';
const DAY_MS = 86_400_000;

/** The UTC day (midnight) of `at`. */
export function utcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}

function partitionName(day: Date): string {
  return `${PARTITION_PREFIX}${day.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** The daily partitions that exist, by their day, oldest first (the default partition is not listed). */
export async function listArchivePartitions(db: QueryExecutor): Promise<Array<{ name: string; day: Date }>> {
  const rows = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
      join pg_class p on p.oid = i.inhparent
     where p.relname = 'event_archive' and c.relname like ${`${PARTITION_PREFIX}%`}
     order by c.relname`.execute(db);
  return rows.rows.flatMap(({ name }) => {
    const digits = name.slice(PARTITION_PREFIX.length);
    if (!/^\d{8}$/.test(digits)) return [];
    const day = new Date(`${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6, 8)}T00:00:00Z`);
    return Number.isNaN(day.getTime()) ? [] : [{ name, day }];
  });
}

export interface ArchiveRotation {
  created: string[];
  dropped: string[];
  /** Rows older than the retention deleted from the default partition (normally none). */
  purgedFromDefault: number;
}

/**
 * Creates the partitions of the UTC days from yesterday to `daysAhead` days after `now`, and drops those whose
 * day ended before `now - retentionDays`. Idempotent; safe to run from several processes at once (a
 * transaction-level advisory lock makes them take turns).
 */
export async function rotateArchivePartitions(
  db: QueryExecutor,
  options: { now: Date; retentionDays: number; daysAhead: number },
): Promise<ArchiveRotation> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended('event_archive/rotation', 0))`.execute(trx);
    const existing = new Set((await listArchivePartitions(trx)).map((p) => p.name));
    const today = utcDay(options.now);
    const created: string[] = [];
    for (let offset = -1; offset <= options.daysAhead; offset++) {
      const day = new Date(today.getTime() + offset * DAY_MS);
      const name = partitionName(day);
      if (existing.has(name)) continue;
      const cutoff = new Date(today.getTime() - options.retentionDays * DAY_MS);
      if (day < cutoff) continue;
      await sql`create table ${sql.id(name)} partition of event_archive
                for values from (${sql.lit(day.toISOString())}) to (${sql.lit(new Date(day.getTime() + DAY_MS).toISOString())})`.execute(
        trx,
      );
      created.push(name);
    }
    // A day is kept while any of it is within the retention: dropped once its end is before the cutoff.
    const cutoff = new Date(options.now.getTime() - options.retentionDays * DAY_MS);
    const dropped: string[] = [];
    for (const partition of await listArchivePartitions(trx)) {
      if (partition.day.getTime() + DAY_MS > cutoff.getTime()) continue;
      await sql`drop table ${sql.id(partition.name)}`.execute(trx);
      dropped.push(partition.name);
    }
    const purged = await sql<{ event_id: string }>`
      delete from event_archive_default where decided_at < ${cutoff} returning event_id`.execute(trx);
    return { created, dropped, purgedFromDefault: purged.rows.length };
  });
}

export interface ArchiveWindow {
  /** Events decided at or after this. */
  since: Date;
  /** One tenant; all tenants when left out. @defaultValue all */
  tenantId?: string;
  /** Rows read per query. @defaultValue `5000` */
  pageSize?: number;
}

/** How many archived events a window holds (for progress and ETA). */
export async function countArchivedEvents(db: QueryExecutor, window: ArchiveWindow): Promise<number> {
  let query = db
    .selectFrom('event_archive')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('decided_at', '>=', window.since);
  if (window.tenantId !== undefined) query = query.where('tenant_id', '=', window.tenantId);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

type ArchiveRow = Omit<
  ArchivedEventRecord,
  'decided_at' | 'received_at' | 'decision_id' | 'policy' | 'would_have'
>;

function toArchivedEvent(row: ArchiveRow): ArchivedEvent {
  const event: TaskEvent = {
    event_id: row.event_id,
    tenant_id: row.tenant_id,
    task_id: row.task_id,
    event_type: row.event_type,
    ts: row.event_ts.toISOString(),
    source: row.source as TaskEvent['source'],
    payload: row.payload,
    ...(row.trace_id ? { trace_id: row.trace_id } : {}),
  };
  return {
    event,
    task: {
      status: row.task_context.status as TaskStatus | null,
      metadata: row.task_context.metadata,
      retry_count: row.task_context.retry_count,
    },
    running_tasks: row.running_tasks,
    recorded: {
      decision_type: row.decision_type as DecisionType,
      finding_codes: row.finding_codes,
      policy_version: row.policy_version,
    },
  };
}

/**
 * Reads a window of the archive one task at a time, each task's events in inbox order (the order they were
 * decided in), handing each task to `onTask`. One query read through a server-side cursor in a read-only
 * transaction, `pageSize` rows per fetch: Postgres walks the index once, and memory holds one page and one
 * task whatever the window's size.
 */
export async function readArchivedTasks(
  db: QueryExecutor,
  window: ArchiveWindow,
  onTask: (events: ArchivedEvent[]) => void,
): Promise<void> {
  const pageSize = window.pageSize ?? 1000;
  await db.transaction().execute(async (trx) => {
    await sql`set transaction read only`.execute(trx);
    await sql`declare archive_replay no scroll cursor for
      select tenant_id, task_id, event_id, event_type, inbox_id, source, trace_id, event_ts, payload,
             task_context, running_tasks, decision_type, policy_version, finding_codes
        from event_archive
       where decided_at >= ${window.since}
         ${window.tenantId === undefined ? sql`` : sql`and tenant_id = ${window.tenantId}`}
       order by tenant_id, task_id, inbox_id`.execute(trx);
    let current: ArchivedEvent[] = [];
    for (;;) {
      const { rows } = await sql<ArchiveRow>`fetch forward ${sql.lit(pageSize)} from archive_replay`.execute(
        trx,
      );
      for (const row of rows) {
        const previous = current[current.length - 1];
        if (
          previous &&
          (previous.event.tenant_id !== row.tenant_id || previous.event.task_id !== row.task_id)
        ) {
          onTask(current);
          current = [];
        }
        current.push(toArchivedEvent(row));
      }
      if (rows.length < pageSize) break;
    }
    if (current.length > 0) onTask(current);
  });
}

export interface ReplayProgress {
  events: number;
  tasks: number;
  elapsedMs: number;
}

/**
 * Feeds every task of a window to `replay` (a domain `Backtest`), calling `onProgress` about every
 * `progressEvery` events. Returns what was read.
 */
export async function replayArchive(
  db: QueryExecutor,
  window: ArchiveWindow,
  replay: { addTask(events: readonly ArchivedEvent[]): void },
  options: { onProgress?: (progress: ReplayProgress) => void; progressEvery?: number } = {},
): Promise<ReplayProgress> {
  const started = performance.now();
  const every = options.progressEvery ?? 10_000;
  const progress = { events: 0, tasks: 0, elapsedMs: 0 };
  let nextReport = every;
  await readArchivedTasks(db, window, (task) => {
    replay.addTask(task);
    progress.events += task.length;
    progress.tasks++;
    if (options.onProgress && progress.events >= nextReport) {
      nextReport = progress.events + every;
      options.onProgress({ ...progress, elapsedMs: performance.now() - started });
    }
  });
  return { ...progress, elapsedMs: performance.now() - started };
}
