import { Router } from 'express';
import { z } from 'zod';
import { findTaskView, listTaskAudits, listTaskDecisions, releaseGate, taskExists, unblockTask, type Db } from '@warden/db';
import { AuditCursorSchema, ConflictError, NotFoundError, PageQuerySchema, TaskIdSchema, ValidationError, decodeCursor, parseOrThrow } from '@warden/domain';
import { authOf, requireScope } from '../auth.js';

const GateIdSchema = z.string().min(1).max(200);
const ReleaseBodySchema = z.object({ note: z.string().max(2000).optional() }).default({});
/** Unblocking overrides a policy's BLOCK: the person must say why, and the reason joins the audit trail. */
const UnblockBodySchema = z.object({ reason: z.string().trim().min(1, 'say why the task may go on').max(2000) });
const DecisionsQuerySchema = z.object({ event_id: z.string().min(1).max(200).optional(), limit: z.coerce.number().int().min(1).max(100).default(50) });

/** Task reads, always scoped to the caller's tenant: another tenant's task is a 404, never a 403. */
export function tasksRouter(options: { db: Db }): Router {
  const router = Router();

  router.get('/tasks/:id', requireScope('tasks:read'), async (req, res) => {
    const taskId = parseOrThrow(TaskIdSchema, req.params.id, 'task id');
    const task = await findTaskView(options.db, authOf(res).tenantId, taskId);
    if (!task) throw new NotFoundError(`task "${taskId}" not found`);
    res.json(task);
  });

  router.get('/tasks/:id/audits', requireScope('tasks:read'), async (req, res) => {
    const tenantId = authOf(res).tenantId;
    const taskId = parseOrThrow(TaskIdSchema, req.params.id, 'task id');
    const query = parseOrThrow(PageQuerySchema, req.query, 'query');
    let afterAuditId: string | undefined;
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor, AuditCursorSchema);
      if (!cursor) throw new ValidationError('invalid query: cursor: not a cursor this API returned', [{ path: 'cursor', message: 'not a cursor this API returned' }]);
      afterAuditId = cursor.after;
    }
    if (!(await taskExists(options.db, tenantId, taskId))) throw new NotFoundError(`task "${taskId}" not found`);
    res.json(await listTaskAudits(options.db, tenantId, taskId, { limit: query.limit, ...(afterAuditId ? { afterAuditId } : {}) }));
  });

  router.get('/tasks/:id/decisions', requireScope('tasks:read'), async (req, res) => {
    const tenantId = authOf(res).tenantId;
    const taskId = parseOrThrow(TaskIdSchema, req.params.id, 'task id');
    const query = parseOrThrow(DecisionsQuerySchema, req.query, 'query');
    if (!(await taskExists(options.db, tenantId, taskId))) throw new NotFoundError(`task "${taskId}" not found`);
    const items = await listTaskDecisions(options.db, tenantId, taskId, { limit: query.limit, ...(query.event_id ? { eventId: query.event_id } : {}) });
    res.json({ items, next_cursor: null });
  });

  // Releasing a pause is a person's decision: audited with the key that did it, refused across tenants (404).
  router.post('/tasks/:id/gates/:gate/release', requireScope('tasks:write'), async (req, res) => {
    const auth = authOf(res);
    const taskId = parseOrThrow(TaskIdSchema, req.params.id, 'task id');
    const gateId = parseOrThrow(GateIdSchema, req.params.gate, 'gate id');
    const body = parseOrThrow(ReleaseBodySchema, req.body ?? {}, 'request body');
    const result = await options.db.transaction().execute((trx) =>
      releaseGate(trx, { tenantId: auth.tenantId, taskId, gateId, releasedBy: `api_key:${auth.keyId}`, ...(body.note ? { note: body.note } : {}) }),
    );
    if (result.status === 'not_found') throw new NotFoundError(`gate "${gateId}" of task "${taskId}" not found`);
    if (result.status === 'already_released') throw new ConflictError(`gate "${gateId}" was already released by ${result.gate.released_by} at ${result.gate.released_at}`);
    res.json(result.gate);
  });

  // The only way out of `blocked`: a person's act with a reason, audited with the key that did it.
  router.post('/tasks/:id/unblock', requireScope('tasks:write'), async (req, res) => {
    const auth = authOf(res);
    const taskId = parseOrThrow(TaskIdSchema, req.params.id, 'task id');
    const body = parseOrThrow(UnblockBodySchema, req.body ?? {}, 'request body');
    const result = await options.db.transaction().execute((trx) =>
      unblockTask(trx, { tenantId: auth.tenantId, taskId, unblockedBy: `api_key:${auth.keyId}`, reason: body.reason }),
    );
    if (result.status === 'not_found') throw new NotFoundError(`task "${taskId}" not found`);
    if (result.status === 'not_blocked') throw new ConflictError(`task "${taskId}" is ${result.current}, not blocked`);
    const task = await findTaskView(options.db, auth.tenantId, taskId);
    res.json(task);
  });

  return router;
}
