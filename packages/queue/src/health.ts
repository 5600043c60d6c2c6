import type { Redis } from 'ioredis';

/** Resolves when Redis answers PING; throws otherwise (readiness checks). */
export async function pingRedis(redis: Redis): Promise<void> {
  const reply = await redis.ping();
  if (reply !== 'PONG') throw new Error(`unexpected PING reply: ${reply}`);
}
