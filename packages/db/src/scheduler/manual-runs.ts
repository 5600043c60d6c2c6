/**
 * Runs someone asked for: trigger-now (a `pending` manual row, governed by whichever scheduler takes its fire
 * job) and the backfill of fires skipped while a trigger was paused.
 */
import { sql } from 'kysely';
import { runRequestedAudit } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { cronExecutionId } from './execution-rows.js';
import { appendTriggerAudits } from './trigger-audit-trail.js';

/**
 * Records a trigger-now request: a `pending` manual row, governed by whichever scheduler
 * takes its fire job. With a `request_id`, asking twice returns the first run (safe client retries).
 */
export async function requestManualRun(
  trx: QueryExecutor,
  input: {
    tenant_id: string;
    trigger_id: string;
    event_name: string;
    params: Record<string, unknown>;
    override_overlap: boolean;
    request_id?: string;
    actor: string;
    now?: Date;
  },
): Promise<{ execution_id: string; scheduled_for: Date; created: boolean }> {
  const now = input.now ?? new Date();
  if (input.request_id !== undefined) {
    const existing = await trx
      .selectFrom('cron_executions')
      .select(['execution_id', 'scheduled_for'])
      .where('trigger_id', '=', input.trigger_id)
      .where('request_id', '=', input.request_id)
      .executeTakeFirst();
    if (existing) return { ...existing, created: false };
  }
  // The fire time is the request time; two requests in the same millisecond take the next free one. A
  // scheduled fire always falls on a whole second (cron minutes, `@every` whole seconds), and a fire is found
  // by its time: a manual run on such a millisecond would take the place of the scheduled fire due then, which
  // would then never run. So a manual run skips whole seconds.
  for (let offset = 0; ; offset++) {
    const scheduled_for = new Date(now.getTime() + offset);
    if (scheduled_for.getTime() % 1000 === 0) continue;
    const execution_id = cronExecutionId(input.trigger_id, scheduled_for);
    const row = await trx
      .insertInto('cron_executions')
      .values({
        execution_id,
        tenant_id: input.tenant_id,
        trigger_id: input.trigger_id,
        event_name: input.event_name,
        scheduled_for,
        triggered_at: now,
        status: 'pending',
        manual: true,
        override_overlap: input.override_overlap,
        params: JSON.stringify(input.params),
        request_id: input.request_id ?? null,
        requested_by: input.actor,
      })
      .onConflict((oc) => oc.doNothing())
      .returning(['execution_id', 'scheduled_for'])
      .executeTakeFirst();
    if (row) {
      await appendTriggerAudits(
        trx,
        input.tenant_id,
        [
          runRequestedAudit({
            event_name: input.event_name,
            execution_id,
            params: input.params,
            override_overlap: input.override_overlap,
            actor: input.actor,
          }),
        ],
        now,
      );
      return { ...row, created: true };
    }
    if (offset >= 1000) throw new Error('could not find a free fire time for the manual run');
  }
}

/**
 * Turns the fires the ledger recorded as skipped (`paused`) since `pausedAt` into `pending` backfill runs (up
 * to `limit`, oldest first), ready to be governed again. Returns them oldest first.
 */
export async function reopenPausedFires(
  trx: QueryExecutor,
  input: { triggerId: string; pausedAt: Date; limit: number; now: Date },
): Promise<Array<{ execution_id: string; scheduled_for: Date }>> {
  const result = await sql<{ execution_id: string; scheduled_for: Date }>`
    update cron_executions set status = 'pending', backfill = true, governed_at = null, skip_reason = null, completed_at = null,
           governance_checks = '[]'::jsonb, error = null, triggered_at = ${input.now}
     where execution_id in (
           select execution_id from cron_executions
            where trigger_id = ${input.triggerId} and scheduled_for >= ${input.pausedAt}
              and status = 'skipped' and skip_reason = 'paused'
            order by scheduled_for limit ${input.limit})
    returning execution_id, scheduled_for`.execute(trx);
  return result.rows.sort((a, b) => a.scheduled_for.getTime() - b.scheduled_for.getTime());
}
