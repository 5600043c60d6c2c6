import type { Route } from '../define-route.js';
import { changeSetRoutes } from './changesets.js';
import { eventRoutes } from './events.js';
import { leadRoutes } from './lead.js';
import { notificationChannelRoutes } from './notification-channels.js';
import { policyRoutes } from './policies.js';
import { supervisorRoutes } from './supervisor.js';
import { taskRoutes } from './tasks.js';
import { triggerRoutes } from './triggers.js';

/** Every public endpoint: served under `/v1` by the app and described by `/openapi.json`, both from this list. */
export const API_ROUTES: readonly Route[] = [
  ...eventRoutes,
  ...taskRoutes,
  ...supervisorRoutes,
  ...leadRoutes,
  ...triggerRoutes,
  ...changeSetRoutes,
  ...policyRoutes,
  ...notificationChannelRoutes,
];
