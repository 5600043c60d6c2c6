import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { testServers } from './servers.js';

/** A BullMQ prefix of its own for one test, so parallel tests never see each other's jobs. */
export function testQueuePrefix(): string {
  return `test-${randomUUID()}`;
}

/** Deletes every key under `prefix` (BullMQ keys are `<prefix>:<queue>:…`). */
export async function deleteQueuePrefix(prefix: string, url = testServers.redisUrl): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
