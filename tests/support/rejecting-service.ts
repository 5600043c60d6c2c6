/**
 * A service for tests/integration/service-rejections.test.ts, run as its own process through `runMain`: once
 * started it leaves one promise rejected with nobody handling it — a real refused Postgres connection
 * (`REJECTION=dependency`) or a plain bug (`REJECTION=bug`) — and, if it is still alive 500 ms later, says so
 * and stops.
 */
import { sql } from 'kysely';
import { createDb } from '@warden/db';
import { runMain } from '@warden/runtime';

await runMain({
  service: 'rejecting-service',
  loadConfig: () => ({ LOG_LEVEL: 'warn' }),
  create: () => {
    // Port 1: nothing listens there, so the connection is refused.
    const db = createDb({ url: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMs: 2000 });
    return {
      async start() {
        const failing =
          process.env.REJECTION === 'bug'
            ? Promise.reject(new TypeError('cannot read properties of undefined'))
            : sql`select 1`.execute(db);
        // Deliberately not awaited: the rejection is nobody's.
        void failing.then(() => {});
        setTimeout(() => {
          process.stdout.write('still running\n');
          process.kill(process.pid, 'SIGTERM');
        }, 500);
      },
      async stop() {
        await db.destroy();
      },
    };
  },
});
