import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// A trigger's handler may be a lead scan (the built-in 24h and 7d scans are triggers): its calls are recorded
// with target_kind 'lead_scan' and the scan window as their target.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table cron_execution_attempts drop constraint if exists cron_execution_attempts_target_kind_check`.execute(
    db,
  );
  await sql`alter table cron_execution_attempts add constraint cron_execution_attempts_target_kind_check
              check (target_kind in ('queue','http','lead_scan'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // A lead-scan call was a job on Warden's `lead-scans` queue: recorded as a queue call, it keeps its history.
  await sql`update cron_execution_attempts set target = 'lead-scans:' || target, target_kind = 'queue'
              where target_kind = 'lead_scan'`.execute(db);
  await sql`alter table cron_execution_attempts drop constraint if exists cron_execution_attempts_target_kind_check`.execute(
    db,
  );
  await sql`alter table cron_execution_attempts add constraint cron_execution_attempts_target_kind_check
              check (target_kind in ('queue','http'))`.execute(db);
}
