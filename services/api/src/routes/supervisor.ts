import { z } from 'zod';
import { backlogStats } from '@warden/db';
import { backlogLevels, hasScope } from '@warden/domain';
import { defineRoute, ok, type Route } from '../define-route.js';

// Any value is taken: only `all` from an admin key widens the view; everything else is the key's tenant.
const BacklogQuerySchema = z.object({
  scope: z
    .string()
    .optional()
    .meta({ description: "`all` with an admin key: the whole installation; otherwise the key's tenant" }),
});

const Level = z.enum(['ok', 'warning', 'critical']);
const Backlog = z
  .object({
    scope: z.enum(['all', 'tenant']),
    pending: z.number(),
    processing: z.number(),
    completed: z.number(),
    failed: z.number(),
    dead: z.number(),
    oldest_pending_age_seconds: z.number(),
    failure_rate: z.number(),
    level: Level.meta({ description: 'The worst of `levels`' }),
    levels: z.object({ backlog: Level, lag: Level, failure_rate: Level }),
  })
  .meta({ id: 'SupervisorBacklog' });

/**
 * `GET /v1/supervisor/backlog`: inbox counts, the oldest pending age and their alert levels (docs/supervisor.md).
 * A tenant's key sees its own backlog; an admin key sees the whole installation with `?scope=all`.
 */
export const supervisorRoutes: Route[] = [
  defineRoute(
    {
      method: 'get',
      path: '/v1/supervisor/backlog',
      scope: 'tasks:read',
      summary: "The supervisor's inbox backlog, lag and failure rate, with their alert levels",
      query: BacklogQuerySchema,
      responses: { 200: { description: 'The backlog', schema: Backlog } },
    },
    async ({ query, auth, deps }) => {
      const all = query.scope === 'all' && hasScope(auth.scopes, 'admin');
      const stats = await backlogStats(deps.db, all ? undefined : auth.tenantId);
      const levels = backlogLevels(stats);
      return ok({
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
    },
  ),
];
