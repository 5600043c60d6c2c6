/** What `closeWorker` needs of a BullMQ `Worker`. */
export interface ClosableWorker {
  close(force?: boolean): Promise<void>;
}

/**
 * Closes a queue worker: gracefully (its jobs in flight finish) for up to `graceMs`, then forced. BullMQ's
 * graceful close can hang while Redis is away (taskforcesh/bullmq#4656); forcing is safe for Warden's workers
 * because every job's effect is recorded in Postgres and an interrupted job is handed out again (claims expire,
 * stalled jobs return to the queue).
 *
 * @param graceMs - how long jobs in flight may take to finish. @defaultValue `10000`
 */
export async function closeWorker(worker: ClosableWorker, graceMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const graceful = worker.close().then(() => true);
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
  const closed = await Promise.race([graceful, expired]);
  clearTimeout(timer);
  if (closed) return;
  // The forced close can hang on a dead connection too; the process exits soon after anyway.
  let forceTimer: NodeJS.Timeout | undefined;
  await Promise.race([
    worker.close(true).catch(() => {}),
    new Promise((resolve) => (forceTimer = setTimeout(resolve, 2000))),
  ]);
  clearTimeout(forceTimer);
}
