import type { Logger } from '@warden/observability';

export interface DeferredEnqueueLog {
  logger: Logger;
  /** Fields naming what was not enqueued: `module` and the ids or count. */
  fields: Record<string, unknown>;
  /** The log line: that the rows are durable, and which poller or sweeper enqueues them instead. */
  message: string;
}

/**
 * The API's write routes commit to Postgres first and enqueue afterwards. The enqueue only makes the work
 * start sooner: every queue's consumer side has a poller (or reconcile pass, or sweeper) that enqueues what is
 * durable but was never queued. So a failed or timed-out enqueue is logged and the request still succeeds.
 * Returns false when the enqueue was deferred to that poller.
 */
export async function enqueueAfterCommit(
  enqueue: () => Promise<unknown>,
  deferred: DeferredEnqueueLog,
): Promise<boolean> {
  try {
    await enqueue();
    return true;
  } catch (error) {
    deferred.logger.warn(
      { ...deferred.fields, action: 'enqueue', status: 'deferred', error_code: 'enqueue_failed', err: error },
      deferred.message,
    );
    return false;
  }
}
