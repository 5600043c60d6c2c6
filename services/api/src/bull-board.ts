import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { RequestHandler, Router } from 'express';
import { ALL_QUEUE_NAMES, type WardenQueues } from '@warden/queue';

/** Bull Board over every Warden queue, mounted at `basePath`. Authentication is the caller's job. */
export function bullBoardRouter(queues: WardenQueues, basePath: string): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: ALL_QUEUE_NAMES.map((name) => new BullMQAdapter(queues.get(name))),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Warden' } },
  });
  return serverAdapter.getRouter() as Router;
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
