import { separationOfDutiesRule, type SeparationOfDutiesRule } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from './audits.js';
import type { Db } from './connection.js';

/** Creates the tenant if it does not exist; returns true when it was created. */
export async function ensureTenant(db: QueryExecutor, tenantId: string, name = tenantId): Promise<boolean> {
  const inserted = await db
    .insertInto('tenants')
    .values({ tenant_id: tenantId, name })
    .onConflict((oc) => oc.column('tenant_id').doNothing())
    .returning('tenant_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** The audit trail (`task_id` of the audit rows) that changes of a tenant's separation-of-duties rule are filed under. */
export const SEPARATION_OF_DUTIES_AUDIT_TASK_ID = 'tenant:separation-of-duties';

/** The tenant's separation-of-duties rule, or undefined when there is no such tenant. */
export async function findSeparationOfDuties(
  db: QueryExecutor,
  tenantId: string,
): Promise<SeparationOfDutiesRule | undefined> {
  const row = await db
    .selectFrom('tenants')
    .select('separation_of_duties')
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  return row ? separationOfDutiesRule(row.separation_of_duties) : undefined;
}

export interface SeparationOfDutiesChange {
  tenantId: string;
  rule: SeparationOfDutiesRule;
  /** Who changed it: the platform operator's name, recorded in the audit row. */
  by: string;
  /** Why, in the operator's words; recorded in the audit row. */
  reason: string;
}

/**
 * Sets a tenant's rule and appends `SEPARATION_OF_DUTIES_RELAXED` / `_ENFORCED` to its hash chain, in one
 * transaction. Setting the rule it already has changes and audits nothing. Undefined when there is no tenant.
 * A key cache in the API may keep the previous rule for its TTL (10 s by default).
 */
export async function setSeparationOfDuties(
  db: Db,
  change: SeparationOfDutiesChange,
): Promise<{ previous: SeparationOfDutiesRule; rule: SeparationOfDutiesRule } | undefined> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('tenants')
      .select('separation_of_duties')
      .where('tenant_id', '=', change.tenantId)
      .forUpdate()
      .executeTakeFirst();
    if (!row) return undefined;
    const previous = separationOfDutiesRule(row.separation_of_duties);
    if (previous === change.rule) return { previous, rule: change.rule };
    await trx
      .updateTable('tenants')
      .set({ separation_of_duties: change.rule })
      .where('tenant_id', '=', change.tenantId)
      .execute();
    await appendAudits(trx, [
      {
        tenant_id: change.tenantId,
        task_id: SEPARATION_OF_DUTIES_AUDIT_TASK_ID,
        event_type:
          change.rule === 'relaxed' ? 'SEPARATION_OF_DUTIES_RELAXED' : 'SEPARATION_OF_DUTIES_ENFORCED',
        // Relaxing lets an agent's key approve its own work: worth a warning wherever audits are watched.
        level: change.rule === 'relaxed' ? 'warn' : 'info',
        decision_id: null,
        event_id: null,
        source_event_ts: null,
        payload: { previous, rule: change.rule, by: change.by, reason: change.reason },
      },
    ]);
    return { previous, rule: change.rule };
  });
}
