/**
 * The floor of `pnpm bench:decide`: an express handler that does one Postgres transaction (one INSERT of the
 * request's body) and answers — the least any HTTP decision round trip backed by Postgres costs. Run as a child
 * process by decide.bench.ts, like the API, so neither shares the load generator's event loop.
 * Env: DATABASE_URL, PORT.
 */
import { createRequire } from 'node:module';
import { sql } from 'kysely';
import { createDb } from '@warden/db';

// express is the API's dependency, not the test package's: resolved from there, the same version the API runs
// (typed here with the little this server uses).
interface Request {
  body: unknown;
}
interface Response {
  status(code: number): Response;
  json(body: unknown): void;
}
type Handler = (req: Request, res: Response, next: () => void) => void;
interface App {
  use(handler: Handler): void;
  get(path: string, handler: (req: Request, res: Response) => void): void;
  post(path: string, handler: (req: Request, res: Response) => Promise<void>): void;
  listen(port: number, host: string): { close(): void };
}
const express = createRequire(new URL('../../services/api/package.json', import.meta.url))('express') as {
  (): App;
  json(): Handler;
};

const db = createDb({ url: process.env.DATABASE_URL!, maxConnections: 20, applicationName: 'decide-floor' });
const app = express();
app.use(express.json());
app.get('/readyz', (_req: Request, res: Response) => {
  res.json({ ok: true });
});
app.post('/floor', async (req: Request, res: Response) => {
  const body = req.body as { event_id: string };
  await db.transaction().execute(async (trx) => {
    await sql`insert into bench_decide_floor (event_id, body) values (${body.event_id}, ${JSON.stringify(body)}::jsonb)`.execute(
      trx,
    );
  });
  res.status(200).json({ decisions: [{ event_id: body.event_id, decision_type: 'ALLOW' }] });
});
const server = app.listen(Number(process.env.PORT), '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void db.destroy().then(() => process.exit(0));
});
