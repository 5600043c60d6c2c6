/**
 * Which API the HTTP commands (`changesets`, `gates`, `policy`, `notifications`) talk to, and as which key:
 * `--url`/`--key`, else `WARDEN_API_URL`/`WARDEN_API_KEY`, else what `npm run up` left in `.warden/` of the
 * current directory — the URL it served the API on (`api-url`) and its development admin key
 * (`dev-admin-key`) — else `http://127.0.0.1:3000`. The development key is only taken for the API that
 * `npm run up` started (the URL in `.warden/api-url`): never sent to another server.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseOrThrow, ValidationError } from '@warden/domain';
import type { CliEnvironment } from './config.js';

export const ApiEnvSchema = z.object({
  /** Where the API is. @defaultValue `.warden/api-url` when present, else `http://127.0.0.1:3000` */
  WARDEN_API_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The API key the commands act as. @defaultValue `.warden/dev-admin-key` for the `npm run up` API */
  WARDEN_API_KEY: z.string().min(1).optional(),
});

const DEFAULT_API_URL = 'http://127.0.0.1:3000';

function readStateFile(environment: CliEnvironment, name: string): string | undefined {
  try {
    return readFileSync(join(environment.cwd, '.warden', name), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function apiTarget(
  environment: CliEnvironment,
  flags: { url?: string; key?: string },
): { url: string; key: string } {
  const env = parseOrThrow(
    ApiEnvSchema,
    { WARDEN_API_URL: environment.env.WARDEN_API_URL, WARDEN_API_KEY: environment.env.WARDEN_API_KEY },
    'configuration',
  );
  const localUrl = readStateFile(environment, 'api-url');
  const url = flags.url ?? env.WARDEN_API_URL ?? localUrl ?? DEFAULT_API_URL;
  const sameAsLocal = localUrl !== undefined && url.replace(/\/+$/, '') === localUrl.replace(/\/+$/, '');
  const key =
    flags.key ??
    env.WARDEN_API_KEY ??
    (sameAsLocal ? readStateFile(environment, 'dev-admin-key') : undefined);
  if (!key)
    throw new ValidationError(
      'no API key: pass --key or set WARDEN_API_KEY (against the `npm run up` stack, run from the repository: its admin key is used)',
    );
  return { url, key };
}
