/**
 * Where the test servers are. Tests talk to real Postgres and Redis; these default to the local ones and can
 * be pointed elsewhere with TEST_DATABASE_URL (any database on the server; each test makes its own) and
 * TEST_REDIS_URL.
 */
export const testServers = {
  databaseUrl:
    process.env.TEST_DATABASE_URL ??
    process.env.DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
};

/** The URL of database `name` on the test server. */
export function databaseUrlFor(name: string): string {
  const url = new URL(testServers.databaseUrl);
  url.pathname = '/' + name;
  return url.toString();
}
