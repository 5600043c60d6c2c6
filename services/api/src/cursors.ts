import type { z } from 'zod';
import { ValidationError, decodeCursor } from '@warden/domain';

const NOT_OURS = 'not a cursor this API returned';

/**
 * The `?cursor=` of a list route, decoded with the schema of the cursors that route hands out (opaque
 * base64url JSON, written by the repositories with `encodeCursor`). Undefined when none was sent; a cursor
 * that does not decode to that schema is a 400 naming `cursor`, never something that reaches SQL.
 */
export function readCursor<S extends z.ZodType>(
  cursor: string | undefined,
  schema: S,
): z.output<S> | undefined {
  if (cursor === undefined) return undefined;
  const decoded = decodeCursor(cursor, schema);
  if (decoded === undefined)
    throw new ValidationError(`invalid query: cursor: ${NOT_OURS}`, [{ path: 'cursor', message: NOT_OURS }]);
  return decoded;
}
