#!/usr/bin/env node
// Entry point for the `rlvr` command. Runs the compiled CLI from dist/ when it has been
// built (`npm run build`), otherwise the TypeScript sources through tsx.
//
// tsx is registered the way the `tsx` command registers it, with both its ESM and its
// CommonJS hooks: a user's reward module (`--reward ./my-reward.ts`) then loads from any
// folder, also a `.ts` or `.js` file with `export default` in a folder whose package.json
// does not say "type": "module" (Node treats such a file as CommonJS; with tsx's ESM hooks
// alone it fails as "Cannot require() ES Module ... in a cycle").
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

async function registerTsx() {
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  cjs.register();
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'scripts', 'cli.js');
if (existsSync(built)) {
  // tsx is a development dependency; without it, TypeScript reward modules need a loader
  // (`node --import tsx`), and the reward loader says so.
  await registerTsx().catch(() => undefined);
  await import(pathToFileURL(built).href);
} else {
  await registerTsx();
  await import(pathToFileURL(join(root, 'scripts', 'cli.ts')).href);
}
