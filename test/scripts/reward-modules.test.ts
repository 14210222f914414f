/**
 * A user's reward module loads through the real command (`bin/rlvr.mjs`, as `npx rlvr` runs
 * it) from a temporary folder outside the project, in every supported form: `.ts` and `.js`
 * with `export default` in a folder without a package.json (Node treats them as CommonJS),
 * `.mts`, `.mjs` and a CommonJS `.cjs`. One run scores with all five; each must have loaded
 * and returned its own value.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../../src/report/metrics.ts';
import { type TinyTask, runCli, tinyGrpoArgs, tinyTask } from './cli-helpers.ts';

let task: TinyTask;
beforeAll(async () => {
  task = await tinyTask('rlvr-reward-modules-');
});
afterAll(() => rmSync(task.dir, { recursive: true, force: true }));

/** Each module returns a value of its own, so the metrics show which one ran. */
const MODULES: Record<string, string> = {
  'via-ts.ts': 'import { helper } from "./helper.ts";\nexport default function viaTs({ completions }: { completions: string[] }): number[] {\n  return completions.map(() => helper(0.1));\n}\n',
  'helper.ts': 'export const helper = (x: number): number => x;\n',
  'via-mts.mts': 'export default function viaMts({ completions }: { completions: string[] }): number[] {\n  return completions.map(() => 0.2);\n}\n',
  'via-js.js': 'export default function viaJs({ completions }) {\n  return completions.map(() => 0.3);\n}\n',
  'via-mjs.mjs': 'export function reward({ completions }) {\n  return completions.map(() => 0.4);\n}\n',
  'via-cjs.cjs': 'module.exports = function viaCjs({ completions }) {\n  return completions.map(() => 0.5);\n};\n',
};

describe('reward modules through the rlvr command', () => {
  it('.ts, .mts, .js, .mjs and .cjs modules load from a folder outside the project without a package.json', async () => {
    for (const [name, text] of Object.entries(MODULES)) {
      writeFileSync(join(task.dir, name), text);
    }
    const rewards = ['via-ts.ts', 'via-mts.mts', 'via-js.js', 'via-mjs.mjs', 'via-cjs.cjs'];
    const outDir = join(task.dir, 'run');
    // Relative paths, resolved against the working directory: the temporary folder.
    const result = await runCli([...tinyGrpoArgs(task, outDir, 1), ...rewards.flatMap((r) => ['--reward', `./${r}`])], { cwd: task.dir });
    expect(result.stderr).not.toContain('failed to load');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const [line] = readMetrics(join(outDir, 'metrics.jsonl'));
    const means = rewards.map((r) => line![`reward/${r.replace(/\.[a-z]+$/, '')}/mean`]);
    means.forEach((m, i) => expect(m, rewards[i]).toBeCloseTo((i + 1) / 10, 6));
  });
});
