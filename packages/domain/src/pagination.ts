import { z } from 'zod';
import { inspectJson } from './validation.js';

/** `?limit=&cursor=` on every list route: 1–100 items, 50 by default; the cursor is opaque. */
export const PageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
export type PageQuery = z.infer<typeof PageQuerySchema>;

/** Lists are `{ items, next_cursor }`; `next_cursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

const BIGINT_MAX = 9223372036854775807n;

/**
 * A Postgres `bigint` id as a decimal string (audit ids are bigserial). Bounded here: a value past the
 * bigint range would otherwise reach SQL and fail there, as a 500, instead of as a bad cursor.
 */
export const BigintIdSchema = z
  .string()
  .regex(/^\d{1,19}$/, 'must be a non-negative integer')
  .refine((value) => BigInt(value) <= BIGINT_MAX, 'must be at most 9223372036854775807 (a Postgres bigint)');

/** The cursor of an audit trail page: the last audit id of the previous page. */
export const AuditCursorSchema = z.object({ after: BigintIdSchema });

/** Cursors are base64url JSON so clients treat them as opaque and servers can evolve them. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * Returns undefined for a cursor that is not one we made, so the caller can answer 400. A cursor is client
 * input: one whose strings Postgres cannot store (NUL, lone surrogates) or that nests deep is refused here,
 * before any of it reaches SQL. (Cursors we make nest one level.)
 */
export function decodeCursor<S extends z.ZodType>(cursor: string, schema: S): z.output<S> | undefined {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (inspectJson(decoded, { maxDepth: 4 }).length > 0) return undefined;
    const result = schema.safeParse(decoded);
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
