/**
 * Stripe-style idempotency for change-set execution (the executor's first step, `idempotency`). The key is SHA-256(`plan_id:checksum`);
 * the record remembers who runs it, how it ended and its result for at least the retention period.
 */
import { sql } from 'kysely';
import { isChangeSetFinished, type ExecutionResult } from '@warden/domain';
import type { ExecutorIdempotencyRow } from './tables.js';
import type { QueryExecutor } from '../database.js';

export type IdempotencyClaim =
  /** This change set runs under the key (a new key, a failed or expired earlier run, or its own earlier attempt). */
  | { status: 'claimed' }
  /** An identical change set completed: replay its stored result. */
  | { status: 'replay'; record: ExecutorIdempotencyRow }
  /** The key was used with other content: refuse. */
  | { status: 'mismatch'; record: ExecutorIdempotencyRow }
  /** An identical change set is running right now: wait, or answer 409. */
  | { status: 'in_progress'; record: ExecutorIdempotencyRow };

/**
 * Claims `key` for a change set, in the caller's transaction (the record row stays locked until it ends):
 * - no record, or an expired one → claimed;
 * - another fingerprint → mismatch;
 * - completed → replay; failed → claimed (a failed execution may be retried);
 * - in progress by this change set → claimed (its own retry); by another that has finished meanwhile → settled
 *   from that change set's status; by another still running → in_progress.
 */
export async function claimIdempotencyKey(
  trx: QueryExecutor,
  input: { tenantId: string; key: string; fingerprint: string; changesetId: string; retentionMs: number },
): Promise<IdempotencyClaim> {
  const expiresAt = new Date(Date.now() + input.retentionMs);
  const inserted = await trx
    .insertInto('executor_idempotency')
    .values({
      tenant_id: input.tenantId,
      idempotency_key: input.key,
      fingerprint: input.fingerprint,
      changeset_id: input.changesetId,
      state: 'in_progress',
      expires_at: expiresAt,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'idempotency_key']).doNothing())
    .returning('idempotency_key')
    .executeTakeFirst();
  if (inserted) return { status: 'claimed' };

  const record = await trx
    .selectFrom('executor_idempotency')
    .selectAll()
    .where('tenant_id', '=', input.tenantId)
    .where('idempotency_key', '=', input.key)
    .forUpdate()
    .executeTakeFirstOrThrow();
  const takeOver = async (): Promise<IdempotencyClaim> => {
    await trx
      .updateTable('executor_idempotency')
      .set({
        fingerprint: input.fingerprint,
        changeset_id: input.changesetId,
        state: 'in_progress',
        result: null,
        updated_at: new Date(),
        expires_at: expiresAt,
      })
      .where('tenant_id', '=', input.tenantId)
      .where('idempotency_key', '=', input.key)
      .execute();
    return { status: 'claimed' };
  };
  if (record.expires_at.getTime() <= Date.now()) return takeOver();
  if (record.fingerprint !== input.fingerprint) return { status: 'mismatch', record };
  if (record.state === 'completed') return { status: 'replay', record };
  if (record.state === 'failed' || record.changeset_id === input.changesetId) return takeOver();

  // In progress under another change set: trust its status over the record, which a crash may have left behind.
  const owner = await trx
    .selectFrom('changesets')
    .select(['status', 'result', 'finished_at'])
    .where('tenant_id', '=', input.tenantId)
    .where('changeset_id', '=', record.changeset_id)
    .executeTakeFirst();
  if (!owner || (isChangeSetFinished(owner.status, owner.finished_at) && owner.status !== 'completed'))
    return takeOver();
  if (owner.status === 'completed') {
    const settled = await settleIdempotencyKey(trx, {
      tenantId: input.tenantId,
      key: input.key,
      changesetId: record.changeset_id,
      state: 'completed',
      result: owner.result,
      retentionMs: input.retentionMs,
    });
    return { status: 'replay', record: settled ?? record };
  }
  return { status: 'in_progress', record };
}

/**
 * Records how the run under `key` ended (only while `changesetId` still owns it). Completed records are kept
 * `retentionMs` from now, so a duplicate within that time is answered from the record.
 */
export async function settleIdempotencyKey(
  db: QueryExecutor,
  input: {
    tenantId: string;
    key: string;
    changesetId: string;
    state: 'completed' | 'failed';
    result: ExecutionResult | null;
    retentionMs: number;
  },
): Promise<ExecutorIdempotencyRow | undefined> {
  return db
    .updateTable('executor_idempotency')
    .set({
      state: input.state,
      result: JSON.stringify(input.result),
      updated_at: new Date(),
      expires_at: new Date(Date.now() + input.retentionMs),
    })
    .where('tenant_id', '=', input.tenantId)
    .where('idempotency_key', '=', input.key)
    .where('changeset_id', '=', input.changesetId)
    .returningAll()
    .executeTakeFirst();
}

export async function findIdempotencyRecord(
  db: QueryExecutor,
  tenantId: string,
  key: string,
): Promise<ExecutorIdempotencyRow | undefined> {
  return db
    .selectFrom('executor_idempotency')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/** Deletes records past their retention (never one still in progress). Returns how many. */
export async function deleteExpiredIdempotencyKeys(db: QueryExecutor, now = new Date()): Promise<number> {
  const result =
    await sql`delete from executor_idempotency where expires_at < ${now} and state <> 'in_progress'`.execute(
      db,
    );
  return Number(result.numAffectedRows ?? 0n);
}
