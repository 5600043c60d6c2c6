import { encodeCursor, type Page } from '@warden/domain';

/**
 * One page of a keyset-paginated list, from rows read with `limit + 1`: the extra row only says whether
 * another page follows, and the cursor is made from the last row shown.
 */
export function keysetPage<Row, View>(
  rows: readonly Row[],
  limit: number,
  toView: (row: Row) => View,
  cursorOf: (last: Row) => Record<string, string>,
): Page<View> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toView),
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor(cursorOf(last)) : null,
  };
}
