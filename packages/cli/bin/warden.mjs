#!/usr/bin/env node
// The installed `warden` command. In development Warden's packages ship TypeScript source, so the launcher
// registers tsx's loader and imports the source entry point. A production install (`pnpm deploy --prod`)
// has no tsx: there it runs the build in dist/ (`npm run build`).
let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
}
if (tsx) {
  tsx.register();
  await import('../src/main.ts');
} else {
  await import('../dist/main.js');
}
