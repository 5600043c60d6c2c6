/**
 * Fencing tokens for workspace locks (Kleppmann's fix for expiring locks). Redlock decides who holds a
 * workspace; every new holder then takes the next token here, and every write first checks, in the same
 * transaction, that the token is still the newest. A holder whose lock expired while it was paused finds a newer
 * token and stops; a holder mid-write keeps the row share-locked, so a new token waits until that write is done.
 */
import { sql, type Kysely } from 'kysely';
import { StaleLockError } from '@warden/domain';
import type { Database, QueryExecutor } from '../database.js';

/**
 * Takes the next fencing token of `workspace` (the first is 1). Waits at most `lockTimeoutMs` for a holder that
 * is mid-write (row share-locked); throws Postgres' lock_not_available error (55P03) past that.
 */
export async function acquireFenceToken(
  db: Kysely<Database>,
  input: {
    workspace: string;
    holder: string;
    tenantId?: string;
    changesetId?: string;
    lockTimeoutMs: number;
  },
): Promise<string> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('lock_timeout', ${`${Math.max(1, Math.round(input.lockTimeoutMs))}ms`}, true)`.execute(
      trx,
    );
    const row = await trx
      .insertInto('workspace_fences')
      .values({
        workspace: input.workspace,
        token: 1,
        holder: input.holder,
        tenant_id: input.tenantId ?? null,
        changeset_id: input.changesetId ?? null,
      })
      .onConflict((oc) =>
        oc.column('workspace').doUpdateSet({
          token: sql`workspace_fences.token + 1`,
          holder: input.holder,
          tenant_id: input.tenantId ?? null,
          changeset_id: input.changesetId ?? null,
          acquired_at: new Date(),
        }),
      )
      .returning('token')
      .executeTakeFirstOrThrow();
    return row.token;
  });
}

/**
 * Throws {@link StaleLockError} unless `token` is still the newest of `workspace`. Run it in the transaction that
 * covers the write: the share lock it takes holds back any newer token until that transaction ends.
 */
export async function assertFenceToken(trx: QueryExecutor, workspace: string, token: string): Promise<void> {
  const row = await sql<{
    token: string;
  }>`select token from workspace_fences where workspace = ${workspace} for share`.execute(trx);
  const current = row.rows[0]?.token;
  if (current !== token) {
    throw new StaleLockError(
      `workspace "${workspace}": fencing token ${token} was superseded by ${current ?? 'none'}; this holder's lock expired and it must not write`,
    );
  }
}

export async function currentFenceToken(db: QueryExecutor, workspace: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('workspace_fences')
    .select('token')
    .where('workspace', '=', workspace)
    .executeTakeFirst();
  return row?.token;
}
