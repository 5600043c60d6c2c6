import { Router } from 'express';
import { backlogStats, type Db } from '@warden/db';
import { backlogLevels, hasScope } from '@warden/domain';
import { authOf, requireScope } from '../auth.js';

/**
 * `GET /v1/supervisor/backlog`: inbox counts, the oldest pending age and their alert levels (SPEC §2). A
 * tenant's key sees its own backlog; an admin key sees the whole installation with `?scope=all`.
 */
export function supervisorRouter(options: { db: Db }): Router {
  const router = Router();
  router.get('/supervisor/backlog', requireScope('tasks:read'), async (req, res) => {
    const auth = authOf(res);
    const all = req.query.scope === 'all' && hasScope(auth.scopes, 'admin');
    const stats = await backlogStats(options.db, all ? undefined : auth.tenantId);
    const levels = backlogLevels(stats);
    res.json({
      scope: all ? 'all' : 'tenant',
      pending: stats.pending,
      processing: stats.processing,
      completed: stats.completed,
      failed: stats.failed,
      dead: stats.dead,
      oldest_pending_age_seconds: Math.round(stats.oldest_pending_age_seconds * 1000) / 1000,
      failure_rate: Math.round(levels.failure_rate_value * 10_000) / 10_000,
      level: levels.level,
      levels: { backlog: levels.backlog, lag: levels.lag, failure_rate: levels.failure_rate },
    });
  });
  return router;
}
