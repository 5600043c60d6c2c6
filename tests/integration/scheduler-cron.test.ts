/**
 * One parser for previews and firing: the next fire times a trigger's status shows must be exactly the times
 * BullMQ's job scheduler fires at — computed by BullMQ's own code, and for real by a job scheduler in Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, getNextMillis } from 'bullmq';
import { nextFireTimes, scheduleOf } from '@warden/domain';
import { createRedis } from '@warden/queue';
import { deleteQueuePrefix, testQueuePrefix, testServers } from '@warden/testing';
import { desiredScheduler } from '../../services/scheduler/src/index.js';

const CASES: Array<[string, string, string]> = [
  ['*/15 9-17 * * 1-5', 'UTC', '2025-06-06T16:50:00Z'],
  ['30 2 * * *', 'Europe/Rome', '2025-03-28T12:00:00Z'],
  ['0 * * * *', 'Europe/Rome', '2025-03-29T22:30:00Z'],
  ['30 1 * * *', 'America/New_York', '2025-10-31T12:00:00Z'],
  ['*/30 * * * *', 'America/New_York', '2025-11-02T04:10:00Z'],
  ['0 0 1 * *', 'Asia/Kolkata', '2025-01-15T00:00:00Z'],
  ['5 4 * jan-mar mon', 'Australia/Sydney', '2025-01-01T00:00:00Z'],
];

describe('previews and firing agree', () => {
  it.each(CASES)('"%s" in %s: the previews equal BullMQ\'s own next times', (pattern, tz, from) => {
    const previews = nextFireTimes(scheduleOf(pattern, tz), new Date(from), 6).map((d) => d.getTime());
    const fired: number[] = [];
    let millis = new Date(from).getTime();
    for (let i = 0; i < 6; i++) {
      millis = getNextMillis(millis, { pattern, tz })!;
      fired.push(millis);
    }
    expect(previews).toEqual(fired);
  });

  describe('with a real job scheduler', () => {
    const prefix = testQueuePrefix();
    const connection = createRedis(testServers.redisUrl, 'general');
    let queue: Queue;
    beforeAll(() => {
      queue = new Queue('cron-fires', { connection, prefix });
    });
    afterAll(async () => {
      await queue.close();
      connection.disconnect();
      await deleteQueuePrefix(prefix);
    });

    it.each([
      ['0 3 * * *', 'Europe/Rome'],
      ['*/5 * * * *', 'America/New_York'],
      ['@every 1m', 'UTC'],
      ['@every 15s', 'UTC'],
    ])(
      '"%s" (%s): the first job is scheduled at the first preview, its id carrying the fire time',
      async (expression, timezone) => {
        const id = `00000000-0000-4000-8000-${String(CASES.length + expression.length).padStart(12, '0')}`;
        const desired = desiredScheduler({
          trigger_id: id,
          tenant_id: 't',
          expression,
          timezone,
          priority: 0,
          enabled: true,
        });
        const before = new Date();
        const job = await queue.upsertJobScheduler(id, desired.repeat, desired.template);
        const [preview] = nextFireTimes(scheduleOf(expression, timezone), before, 1);
        expect(job.id).toBe(`repeat:${id}:${preview!.getTime()}`);
        await queue.removeJobScheduler(id);
      },
    );
  });
});
