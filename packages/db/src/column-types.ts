/**
 * Column types shared by every context's table types, following Kysely's convention:
 * `ColumnType<Select, Insert, Update>` where reading and writing a column differ.
 */
import type { ColumnType } from 'kysely';

/** timestamptz with a database default: optional on insert. */
export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** timestamptz the writer must always give. */
export type RequiredTimestamp = ColumnType<Date, Date | string, Date | string>;
export type NullableTimestamp = ColumnType<
  Date | null,
  Date | string | null | undefined,
  Date | string | null
>;
/** jsonb: read as parsed JSON, written as a JSON string (node-postgres does not stringify arrays for us). */
export type Json<T> = ColumnType<T, string, string>;
/** jsonb with a database default: optional on insert. */
export type DefaultedJson<T> = ColumnType<T, string | undefined, string>;
export type NullableJson<T> = ColumnType<T | null, string | null | undefined, string | null>;
/** int8 read as a string, so it never loses precision. */
export type BigIntColumn = ColumnType<string, number | string, number | string>;
/** numeric read as a string (exact); a default makes it optional on insert. */
export type Numeric = ColumnType<string, number | string | undefined, number | string>;
export type NullableNumeric = ColumnType<
  string | null,
  number | string | null | undefined,
  number | string | null
>;
