import { Router } from 'express';
import { z } from 'zod';
import { findTaskView, listTaskAudits, taskExists, type Db } from '@warden/db';
import { NotFoundError, PageQuerySchema, TaskIdSchema, ValidationError, decodeCursor, parseOrThrow } from '@warden/domain';
import { authOf, requireScope } from '../auth.js';

const AuditCursorSchema = z.object({ after: z.string().regex(/^\d+$/) });

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

  return router;
}
