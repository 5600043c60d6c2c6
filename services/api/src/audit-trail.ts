import { listTaskAudits, type Db } from '@warden/db';
import { AuditCursorSchema, AuditViewSchema, type PageQuery } from '@warden/domain';
import { readCursor } from './cursors.js';
import { page } from './schemas.js';

export const Audit = AuditViewSchema.meta({ id: 'Audit' });
export const AuditPage = page(Audit);

/** Whose trail: the task id it is filed under, and the check that answers 404 when its owner does not exist. */
export interface AuditTrail {
  taskId: string;
  assertExists: () => Promise<void>;
}

/**
 * A page of one audit trail of the tenant's hash chain, oldest first: a task's, or the one a change set files
 * its steps under. A bad cursor is a 400 before the owner is looked up.
 */
export async function auditTrailPage(db: Db, tenantId: string, trail: AuditTrail, query: PageQuery) {
  const after = readCursor(query.cursor, AuditCursorSchema);
  await trail.assertExists();
  return listTaskAudits(db, tenantId, trail.taskId, {
    limit: query.limit,
    ...(after ? { afterAuditId: after.after } : {}),
  });
}
