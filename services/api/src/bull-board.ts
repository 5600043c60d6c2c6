import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import type { RequestHandler, Router } from 'express';
import type { Db } from '@warden/db';
import { ForbiddenError } from '@warden/domain';
import { ALL_QUEUE_NAMES, triggerHandlerQueueName, type WardenQueues } from '@warden/queue';

export interface BullBoardOptions {
  queues: WardenQueues;
  /** Where the trigger names and the handler queues are read from. */
  db: Db;
  basePath: string;
  /**
   * Read-only: jobs and queues can be looked at, not retried, promoted, cleaned, paused or obliterated (the UI
   * hides the buttons and the API refuses the requests). @defaultValue `true`
   */
  readOnly?: boolean;
  /** How long the trigger names and handler queues are trusted before they are read again. @defaultValue `10000` */
  refreshMs?: number;
}

export interface WardenBullBoard {
  /** Serves the board; the board itself is built on the first request (see {@link bullBoardRouter}). */
  handle: RequestHandler;
  /** The board's express router, built now if no request has built it yet. */
  router(): Router;
  /** Middleware run before the board: refreshes the trigger names and the list of handler queues when stale. */
  refresh: RequestHandler;
  /** Refuses every request that would change a queue or a job while the board is read-only. */
  guardReadOnly: RequestHandler;
  /** The queue names the board lists now. */
  queueNames(): string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Bull Board over every queue operators are told to check (docs/runbook.md): Warden's own queues and each
 * trigger handler queue (`cron-handler.<tenant>.<queue>`, found from the triggers' targets), with jobs named by
 * their trigger's name rather than its UUID. Read-only unless configured otherwise. Authentication — a
 * platform operator's key, never a tenant's — is the caller's job.
 *
 * The board is built when it is first asked for, not with the app: Bull Board and what it loads (its UI
 * templates, lodash, valibot) held about 5 MB of every idle API process's memory, for a page an operator
 * opens now and then (`pnpm bench:startup`).
 */
export function bullBoardRouter(options: BullBoardOptions): WardenBullBoard {
  const readOnly = options.readOnly ?? true;
  const handlerQueues = new Map<string, Queue>();
  let built: ReturnType<typeof buildBoard> | undefined;
  const board = () => (built ??= buildBoard(options, readOnly, handlerQueues));

  return {
    handle: (req, res, next) => board().router(req, res, next),
    router: () => board().router,
    refresh: (req, res, next) => board().refresh(req, res, next),
    guardReadOnly: (req, _res, next) => {
      if (!readOnly || SAFE_METHODS.has(req.method)) return next();
      next(
        new ForbiddenError(
          'Bull Board is read-only (BULL_BOARD_READ_ONLY=true): queues and jobs can be looked at, not changed',
        ),
      );
    },
    queueNames: () => [...ALL_QUEUE_NAMES, ...[...handlerQueues.keys()].sort()],
  };
}

function buildBoard(
  options: BullBoardOptions,
  readOnly: boolean,
  handlerQueues: Map<string, Queue>,
): { router: Router; refresh: RequestHandler } {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(options.basePath);
  const triggerNames = new Map<string, string>();
  const adapters = new Map<string, BullMQAdapter>();

  const adapterFor = (name: string, queue: Queue): BullMQAdapter => {
    let adapter = adapters.get(name);
    if (!adapter) {
      adapter = new BullMQAdapter(queue, { readOnlyMode: readOnly, allowRetries: !readOnly });
      adapter.setFormatter('name', (job: { name?: string; data?: unknown }) => jobTitle(job, triggerNames));
      adapter.setFormatter('data', (data: unknown) => withTriggerName(data, triggerNames));
      adapters.set(name, adapter);
    }
    return adapter;
  };
  const own = () => ALL_QUEUE_NAMES.map((name) => adapterFor(name, options.queues.get(name)));
  const board = createBullBoard({
    queues: own(),
    serverAdapter,
    options: { uiConfig: { boardTitle: readOnly ? 'Warden (read-only)' : 'Warden' } },
  });

  let refreshedAt = 0;
  let refreshing: Promise<void> | undefined;
  const reload = async () => {
    const triggers = await options.db
      .selectFrom('cron_triggers')
      .select(['trigger_id', 'tenant_id', 'event_name', 'agent_target', 'fallback_target'])
      .execute();
    triggerNames.clear();
    const handlerNames = new Set<string>();
    for (const trigger of triggers) {
      triggerNames.set(trigger.trigger_id, `${trigger.tenant_id}/${trigger.event_name}`);
      for (const target of [trigger.agent_target, trigger.fallback_target]) {
        const queue = (target as { queue?: unknown } | null)?.queue;
        if (typeof queue === 'string') handlerNames.add(triggerHandlerQueueName(trigger.tenant_id, queue));
      }
    }
    for (const name of handlerNames) {
      if (!handlerQueues.has(name)) {
        const queue = new Queue(name, {
          connection: options.queues.redis,
          prefix: options.queues.keyPrefix(name),
        });
        queue.on('error', () => {});
        handlerQueues.set(name, queue);
      }
    }
    board.replaceQueues([
      ...own(),
      ...[...handlerNames].sort().map((name) => adapterFor(name, handlerQueues.get(name)!)),
    ]);
    refreshedAt = Date.now();
  };

  return {
    router: serverAdapter.getRouter() as Router,
    refresh: (_req, _res, next) => {
      if (Date.now() - refreshedAt < (options.refreshMs ?? 10_000)) return next();
      refreshing ??= reload().finally(() => (refreshing = undefined));
      refreshing.then(() => next(), next);
    },
  };
}

/** A job's title: its name and, when it belongs to a trigger, the trigger's tenant/name instead of its UUID. */
function jobTitle(job: { name?: string; data?: unknown }, names: ReadonlyMap<string, string>): string {
  const data = (job.data ?? {}) as { trigger_id?: unknown; context?: { event_name?: unknown } };
  const trigger =
    (typeof data.trigger_id === 'string' ? names.get(data.trigger_id) : undefined) ??
    (typeof data.context?.event_name === 'string' ? data.context.event_name : undefined);
  return trigger ? `${job.name ?? ''} · ${trigger}` : (job.name ?? '');
}

function withTriggerName(data: unknown, names: ReadonlyMap<string, string>): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data;
  const id = (data as { trigger_id?: unknown }).trigger_id;
  const name = typeof id === 'string' ? names.get(id) : undefined;
  return name ? { trigger: name, ...data } : data;
}

// BullMQ's refusals of an action on a job in the wrong state, or on one that is gone. Bull Board answers every
// thrown error with a 500; these are the caller asking for something the job's state does not allow.
const GONE = /\bnot found\b|does not exist|Missing key for job/i;
const WRONG_STATE =
  /is not in the \w+ state|could not be removed|is locked|is not paused|already (exists|completed|failed)/i;

interface BullBoardErrorBody {
  error?: { key?: unknown; code?: unknown; message?: unknown; details?: unknown };
  message?: unknown;
  [field: string]: unknown;
}

/**
 * Bull Board answers errors as `{ error: { key }, message? }`. This puts Warden's one error shape next to its
 * own fields (`error.code`, `error.message`, `error.details`; `error.key` stays for its UI), and turns BullMQ's
 * wrong-state and not-found errors from 500 into 409 and 404.
 */
export const conformBullBoardErrors: RequestHandler = (_req, res, next) => {
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    if (res.statusCode < 400 || body === null || typeof body !== 'object') return json(body);
    const original = body as BullBoardErrorBody;
    if (typeof original.error?.code === 'string' && Array.isArray(original.error.details)) return json(body);
    const key = typeof original.error?.key === 'string' ? original.error.key : undefined;
    const message = typeof original.message === 'string' ? original.message : (key ?? 'request failed');
    if (res.statusCode >= 500 && GONE.test(message)) res.status(404);
    else if (res.statusCode >= 500 && WRONG_STATE.test(message)) res.status(409);
    const code = (key ?? 'bad_request').replace(/^ERRORS\./, '').toLowerCase();
    return json({
      ...original,
      error: {
        ...original.error,
        code: res.statusCode >= 500 ? 'internal' : code,
        message,
        details: [{ path: '(request)', message }],
      },
    });
  };
  next();
};
