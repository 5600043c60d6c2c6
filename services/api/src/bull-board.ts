import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
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
