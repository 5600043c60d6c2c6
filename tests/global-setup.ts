import { ensureTemplateDatabase } from '@warden/testing';

/** Runs once per test run: makes the migrated template database every test file copies. */
export default async function setup(): Promise<void> {
  await ensureTemplateDatabase();
}
