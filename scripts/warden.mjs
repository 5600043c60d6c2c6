#!/usr/bin/env node
// `npm run warden -- …`: the CLI from its build (packages/cli/dist) while the build is newer than every source
// it was made from, else from the TypeScript sources through tsx — always what the sources say, fast once
// built (`npm run setup` and `npm run build` build it; a command from the build starts in a fraction of a
// second, through tsx in seconds). WARDEN_CLI_FROM=source or =dist forces one.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isFresh } from './build.mjs';

const cli = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'packages', 'cli');
const from = process.env.WARDEN_CLI_FROM ?? (isFresh(cli) ? 'dist' : 'source');
if (from === 'dist') {
  await import(pathToFileURL(join(cli, 'dist', 'main.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(cli, 'src', 'main.ts')).href);
}
