import type { RedisConnection } from './redis.js';

/** Resolves when Redis answers PING; throws otherwise (readiness checks). */
export async function pingRedis(redis: RedisConnection): Promise<void> {
  const reply = await redis.ping();
  if (reply !== 'PONG') throw new Error(`unexpected PING reply: ${reply}`);
}
