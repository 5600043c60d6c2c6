import type { QueryExecutor } from '../database.js';

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
