/**
 * A BullMQ queue whose connection set-up failed stays failed: BullMQ keeps the rejected set-up, and every later
 * call on that queue rejects with it. On a Redis Cluster that is still starting up, BullMQ's first command
 * (`INFO`, for the server's version) is refused ("Cluster isn't ready"), and the API's producer queue would
 * then refuse every enqueue until a restart (each event left to the poller). `WardenQueues` drops such a
 * queue and opens a new one at the next call. Here the first `INFO` is refused by an ACL instead, on the
 * shared test Redis: deterministic, whatever the machine's speed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES, WardenQueues, createRedis, eventJobId } from '@warden/queue';
import { deleteQueuePrefix, testQueuePrefix, testServers, waitFor } from '@warden/testing';
import { taskEvent } from '../support/supervisor.js';

describe('a producer queue whose connection set-up failed', () => {
  const user = `warden-test-${randomUUID()}`;
  const password = randomUUID();
  const prefix = testQueuePrefix();
  const admin = createRedis(testServers.redisUrl, 'general');

  beforeAll(async () => {
    // Everything but INFO, the first command BullMQ sends on a new connection.
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all', '-info');
  });
  afterAll(async () => {
    await admin.call('ACL', 'DELUSER', user);
    await deleteQueuePrefix(prefix);
    admin.disconnect();
  });

  it('should be replaced, so enqueues succeed again once the server accepts the set-up', async () => {
    const url = new URL(testServers.redisUrl);
    url.username = user;
    url.password = password;
    const connection = createRedis(url.toString(), 'producer');
    const queues = new WardenQueues({ connection, prefix });
    try {
      const event = taskEvent('acme', `setup-${randomUUID()}`, { task_id: 'task-setup' });
      const jobId = eventJobId(event.tenant_id, event.event_id);
      const enqueue = () => queues.enqueue(QUEUE_NAMES.supervisorEvents, 'event', event, { jobId });
      await expect(enqueue()).rejects.toThrow(/NOPERM|no permissions/i);

      await admin.call('ACL', 'SETUSER', user, '+info');
      expect(await waitFor('an enqueue to succeed', () => enqueue().catch(() => undefined))).toBe(jobId);
      expect(await queues.get(QUEUE_NAMES.supervisorEvents).getJob(jobId)).toMatchObject({ name: 'event' });
    } finally {
      await queues.close();
      connection.disconnect();
    }
  });
});
