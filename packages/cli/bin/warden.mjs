#!/usr/bin/env node
// The installed `warden` command. Warden's packages ship TypeScript source, so the launcher registers
// tsx's loader before importing the entry point; a production image can point this at a build instead.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
