#!/usr/bin/env node
// The `hms` command. Runs the TypeScript sources through tsx; `npm run build` + `node dist/src/cli.js` runs compiled code.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/cli.ts', import.meta.url).href);
