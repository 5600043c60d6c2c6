import { z } from 'zod';

/** A list reply: `{ items, next_cursor }`, `next_cursor` null on the last page. */
export const page = <S extends z.ZodType>(item: S) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });
