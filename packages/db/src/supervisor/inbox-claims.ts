import { sql } from 'kysely';
import type { TaskEvent } from '@warden/domain';
import type { InboxRow, QueryExecutor } from '../database.js';
import { toInboxRecord } from './inbox.js';

export interface InboxKey {
  tenant_id: string;
  event_id: string;
}

/** A claimed inbox row: the processor owns it while `claim_generation` is unchanged and the claim has not expired. */
export type ClaimedEvent = InboxRow;

/**
 * The claim of the given events' inbox rows, as one UPDATE: rows that are `pending`, `failed` and due, or
 * `processing` with an expired claim. Each claim bumps `claim_generation` and `attempts`. Rows another
 * processor holds (locked or validly claimed) and finished rows are skipped, so a duplicate delivery claims
 * nothing. Returns the claimed rows.
 */
function claimUpdate(keys: readonly InboxKey[], claimTtlMs: number) {
  return sql<ClaimedEvent>`
    update supervisor_inbox as i
       set status = 'processing',
           claim_generation = i.claim_generation + 1,
           attempts = i.attempts + 1,
           claimed_at = now(),
           claim_expires_at = now() + make_interval(secs => ${claimTtlMs / 1000}),
           error = null
      from (
        select inbox_id from supervisor_inbox
         where (tenant_id, event_id) in (select * from unnest(${keys.map((k) => k.tenant_id)}::text[], ${keys.map((k) => k.event_id)}::text[]))
           and (   (status = 'pending')
                or (status = 'failed' and coalesce(next_attempt_at, now()) <= now())
                or (status = 'processing' and claim_expires_at < now()))
         order by inbox_id
           for update skip locked
      ) as claimable
     where i.inbox_id = claimable.inbox_id
 returning i.*`;
}

/** Claims the given events' inbox rows for processing (see `claimUpdate`). */
export async function claimInboxEvents(
  db: QueryExecutor,
  keys: readonly InboxKey[],
  claimTtlMs: number,
): Promise<ClaimedEvent[]> {
  if (keys.length === 0) return [];
  return (await claimUpdate(keys, claimTtlMs).execute(db)).rows;
}

/**
 * Ensures each event has an inbox row and claims it, in one statement: an event never seen is inserted
 * already claimed (generation 1, attempt 1); an existing row is claimed as `claimInboxEvents` does. The
 * claim commits on its own, before any decision, so an event that crashes its processor still counts the
 * attempt. An event whose row another transaction is inserting right now is left to that transaction.
 */
export async function insertAndClaimEvents(
  db: QueryExecutor,
  events: readonly TaskEvent[],
  claimTtlMs: number,
): Promise<ClaimedEvent[]> {
  if (events.length === 0) return [];
  // The statement sees the table as it was when it began: the UPDATE cannot see (and claim twice) the rows
  // the INSERT adds, and the INSERT adds none the UPDATE could see (those conflict).
  const result = await sql<ClaimedEvent>`
    with fresh as (
      insert into supervisor_inbox (tenant_id, event_id, task_id, event_type, source, payload, trace_id, event_ts,
                                    status, claim_generation, attempts, claimed_at, claim_expires_at)
      select tenant_id, event_id, task_id, event_type, source, payload, trace_id, event_ts,
             'processing', 1, 1, now(), now() + make_interval(secs => ${claimTtlMs / 1000})
        from jsonb_to_recordset(${JSON.stringify(events.map(toInboxRecord))}::jsonb)
             as e(tenant_id text, event_id text, task_id text, event_type text, source text, payload jsonb, trace_id text, event_ts timestamptz)
      on conflict (tenant_id, event_id) do nothing
      returning *
    ), claimed as (${claimUpdate(events, claimTtlMs)})
    select * from fresh union all select * from claimed`.execute(db);
  return result.rows;
}

/** What became of a group's claims once it holds its tasks' locks (see `settleClaims`). */
export interface SettledClaims {
  /** Inbox ids of the claims still this processor's: now `completed`, locked until the transaction ends. */
  owned: Set<string>;
  /** Undecided earlier events of the same tasks, taken over to be decided first (by inbox order). */
  takenOver: ClaimedEvent[];
  /** Inbox ids of owned or taken-over rows whose event has a decision already (an operator replayed it). */
  decided: Set<string>;
}

/**
 * In one statement, under the tasks' row locks (see `lockTaskContexts`): completes the claims still owned
 * (`completeClaimedEvents`), takes over the undecided events that came before them for the same tasks
 * (`takeOverUpdate`), and says which of these rows' events are decided already.
 */
export async function settleClaims(
  trx: QueryExecutor,
  claims: ReadonlyArray<Pick<InboxRow, 'inbox_id' | 'claim_generation' | 'tenant_id' | 'task_id'>>,
): Promise<SettledClaims> {
  const settled: SettledClaims = { owned: new Set(), takenOver: [], decided: new Set() };
  if (claims.length === 0) return settled;
  // Owned rows come back as their keys only (their processor has them), taken-over rows whole: one result
  // shape, the other's columns null ((null::supervisor_inbox).* is a row of the table's columns, all null).
  const result = await sql<
    ClaimedEvent & { settled_as: 'owned' | 'taken_over'; settled_id: string; decided: boolean }
  >`
    with owned as (${completeUpdate(claims)}), taken as (${takeOverUpdate(claims)}), settled as (
      select 'owned' as settled_as, o.inbox_id as settled_id, o.tenant_id as settled_tenant, o.event_id as settled_event,
             (null::supervisor_inbox).*
        from owned o
      union all
      select 'taken_over', t.inbox_id, t.tenant_id, t.event_id, t.* from taken t
    )
    select s.*, exists (select 1 from decisions d where d.tenant_id = s.settled_tenant and d.event_id = s.settled_event) as decided
      from settled s`.execute(trx);
  for (const { settled_as: settledAs, settled_id: settledId, decided, ...rest } of result.rows) {
    const id = String(settledId);
    if (settledAs === 'owned') settled.owned.add(id);
    else {
      const {
        settled_tenant: _tenant,
        settled_event: _event,
        ...row
      } = rest as typeof rest & {
        settled_tenant: string;
        settled_event: string;
      };
      settled.takenOver.push(row);
    }
    if (decided) settled.decided.add(id);
  }
  settled.takenOver.sort((a, b) => Number(a.inbox_id) - Number(b.inbox_id));
  return settled;
}

/** Completes the rows whose claim is still the one given (ascending ids); returns their keys. */
function completeUpdate(claims: ReadonlyArray<{ inbox_id: string; claim_generation: number }>) {
  const sorted = [...claims].sort((a, b) => Number(a.inbox_id) - Number(b.inbox_id));
  return sql<Pick<InboxRow, 'inbox_id' | 'tenant_id' | 'event_id'>>`
    update supervisor_inbox as i
       set status = 'completed', processed_at = now(), claim_expires_at = null, error = null, next_attempt_at = null
      from unnest(${sorted.map((c) => c.inbox_id)}::bigint[], ${sorted.map((c) => c.claim_generation)}::int[]) as owned(inbox_id, generation)
     where i.inbox_id = owned.inbox_id and i.claim_generation = owned.generation and i.status = 'processing'
 returning i.inbox_id, i.tenant_id, i.event_id`;
}

/**
 * Marks claimed rows completed, but only those whose claim is still the one given: a processor whose claim
 * expired and was taken over completes nothing. Returns the inbox ids it completed (and now holds locked
 * until the transaction ends).
 */
export async function completeClaimedEvents(
  trx: QueryExecutor,
  claims: ReadonlyArray<{ inbox_id: string; claim_generation: number }>,
): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const result = await completeUpdate(claims).execute(trx);
  return new Set(result.rows.map((r) => String(r.inbox_id)));
}

/**
 * Takes over the undecided events that came before `claims` for the same tasks (by inbox order), the claims'
 * own rows excepted: rows still `pending`, `failed`, or `processing` under another claim. They are completed
 * with a new claim generation, so the caller decides them first and their earlier claimants complete nothing.
 * Only while holding the tasks' row locks (see `lockTaskContexts`), so no other decision can be applying them.
 */
function takeOverUpdate(claims: ReadonlyArray<Pick<InboxRow, 'inbox_id' | 'tenant_id' | 'task_id'>>) {
  const latest = new Map<string, { tenant_id: string; task_id: string; inbox_id: string }>();
  for (const claim of claims) {
    const key = `${claim.tenant_id}\u0000${claim.task_id}`;
    const seen = latest.get(key);
    if (!seen || BigInt(claim.inbox_id) > BigInt(seen.inbox_id))
      latest.set(key, {
        tenant_id: claim.tenant_id,
        task_id: claim.task_id,
        inbox_id: String(claim.inbox_id),
      });
  }
  const tasks = [...latest.values()];
  return sql<InboxRow>`
    update supervisor_inbox as i
       set status = 'completed', claim_generation = i.claim_generation + 1, attempts = i.attempts + 1, claimed_at = now(),
           processed_at = now(), claim_expires_at = null, error = null, next_attempt_at = null
      from (
        select s.inbox_id from supervisor_inbox s
          join unnest(${tasks.map((t) => t.tenant_id)}::text[], ${tasks.map((t) => t.task_id)}::text[], ${tasks.map((t) => t.inbox_id)}::bigint[])
               as t(tenant_id, task_id, before_id)
            on s.tenant_id = t.tenant_id and s.task_id = t.task_id and s.inbox_id < t.before_id
         where s.status in ('pending', 'processing', 'failed')
           and s.inbox_id <> all(${claims.map((c) => String(c.inbox_id))}::bigint[])
         order by s.inbox_id
           for update of s
      ) as earlier
     where i.inbox_id = earlier.inbox_id
 returning i.*`;
}

/**
 * Records a failed attempt on a still-owned claim: `failed` with a retry time, or `dead` once `attempts`
 * reached `maxAttempts`. Returns the new status, or undefined when the claim had moved on.
 */
export async function failClaimedEvent(
  db: QueryExecutor,
  claim: { inbox_id: string; claim_generation: number; attempts: number },
  error: string,
  options: { maxAttempts: number; retryDelayMs: number },
): Promise<'failed' | 'dead' | undefined> {
  const dead = claim.attempts >= options.maxAttempts;
  // One statement: a dead event and its `inbox.event_dead` notification commit together.
  const result = await sql<{ status: 'failed' | 'dead' }>`
    with updated as (
      update supervisor_inbox
         set status = ${dead ? 'dead' : 'failed'},
             error = ${error.slice(0, 2000)},
             claim_expires_at = null,
             next_attempt_at = ${dead ? null : new Date(Date.now() + options.retryDelayMs)}
       where inbox_id = ${claim.inbox_id}
         and claim_generation = ${claim.claim_generation}
         and status = 'processing'
   returning *
    ), notified as (${notifyDeadEvents})
    select status from updated`.execute(db);
  return result.rows[0]?.status;
}

/**
 * Inserts an `inbox.event_dead` notification for every dead row of the `updated` CTE it follows (the same
 * payload shape `recordNotifications` writes). The event's payload and error stay out: they are the agent's.
 */
const notifyDeadEvents = sql`
  insert into notification_outbox (tenant_id, event_type, payload)
  select tenant_id, 'inbox.event_dead', jsonb_build_object(
           'subject', jsonb_build_object('kind', 'inbox_event', 'id', event_id),
           'summary', 'Event ' || event_id || ' (' || event_type || ') of task ' || task_id || ' could not be decided after '
                      || attempts || ' attempt(s); it is dead and needs a person.',
           'console_path', '/console/inbox',
           'details', jsonb_build_object('event_id', event_id, 'task_id', task_id, 'event_type', event_type,
                                         'attempts', attempts))
    from updated where status = 'dead'`;

/** Claims that expired (their processor died): back to `pending`, or `dead` past the attempt cap. */
export async function releaseExpiredClaims(
  db: QueryExecutor,
  maxAttempts: number,
  limit: number,
): Promise<{ released: InboxRow[]; dead: InboxRow[] }> {
  const result = await sql<InboxRow>`
    with updated as (
    update supervisor_inbox as i
       set status = case when i.attempts >= ${maxAttempts} then 'dead' else 'pending' end,
           claim_expires_at = null,
           error = case when i.attempts >= ${maxAttempts} then 'claim expired ' || i.attempts || ' times' else i.error end
      from (select inbox_id from supervisor_inbox
             where status = 'processing' and claim_expires_at < now()
             order by claim_expires_at limit ${limit} for update skip locked) as expired
     where i.inbox_id = expired.inbox_id
 returning i.*
    ), notified as (${notifyDeadEvents})
    select * from updated`.execute(db);
  return {
    released: result.rows.filter((r) => r.status === 'pending'),
    dead: result.rows.filter((r) => r.status === 'dead'),
  };
}

/**
 * Rows the queue may have lost: `pending` for longer than `graceMs` (or `failed` and due), not re-enqueued
 * within the grace period either — nor since `options.enqueuedBefore` (the start of a poller's drain, so a
 * drain never takes a row twice however long it lasts). Marks them enqueued now and returns them for the caller to
 * enqueue.
 */
export async function takeRowsToReenqueue(
  db: QueryExecutor,
  graceMs: number,
  limit: number,
  options: {
    /** Skip rows enqueued at or after this. @defaultValue no bound beyond `graceMs` */
    enqueuedBefore?: Date;
  } = {},
): Promise<InboxRow[]> {
  const notSince = options.enqueuedBefore ? sql`and last_enqueued_at < ${options.enqueuedBefore}` : sql``;
  const result = await sql<InboxRow>`
    update supervisor_inbox as i
       set last_enqueued_at = now()
      from (select inbox_id from supervisor_inbox
             where ((status = 'pending' and received_at < now() - make_interval(secs => ${graceMs / 1000}))
                 or (status = 'failed' and coalesce(next_attempt_at, now()) <= now()))
               and (last_enqueued_at is null
                    or (last_enqueued_at < now() - make_interval(secs => ${graceMs / 1000}) ${notSince}))
             order by received_at limit ${limit} for update skip locked) as due
     where i.inbox_id = due.inbox_id
 returning i.*`.execute(db);
  return result.rows;
}

/** Deletes completed rows processed before `olderThan`, in batches; returns how many went. */
export async function deleteCompletedInboxRows(
  db: QueryExecutor,
  olderThan: Date,
  batchSize = 5000,
): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql`
      delete from supervisor_inbox where inbox_id in (
        select inbox_id from supervisor_inbox where status = 'completed' and processed_at < ${olderThan} limit ${batchSize})`.execute(
      db,
    );
    const deleted = Number(result.numAffectedRows ?? 0);
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

export interface BacklogStats {
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  dead: number;
  oldest_pending_age_seconds: number;
}

/** Inbox counts by status and the age of the oldest pending row, optionally for one tenant. */
export async function backlogStats(db: QueryExecutor, tenantId?: string): Promise<BacklogStats> {
  const tenantFilter = tenantId === undefined ? sql`true` : sql`tenant_id = ${tenantId}`;
  const result = await sql<{ status: string; n: string; oldest: number | null }>`
    select status, count(*) as n,
           extract(epoch from now() - min(received_at)) as oldest
      from supervisor_inbox where ${tenantFilter} group by status`.execute(db);
  const stats: BacklogStats = {
    pending: 0,
    processing: 0,
    completed: 0,
    failed: 0,
    dead: 0,
    oldest_pending_age_seconds: 0,
  };
  for (const row of result.rows) {
    if (row.status in stats) (stats as unknown as Record<string, number>)[row.status] = Number(row.n);
    if (row.status === 'pending' && row.oldest !== null)
      stats.oldest_pending_age_seconds = Math.max(0, Number(row.oldest));
  }
  return stats;
}
