/**
 * Named, complete trainer configs for the demos. A preset is a plain config object: the
 * CLI layers `--config`, `--set` and flags over it, and the result is validated like any
 * other config.
 */

// ---------------------------------------------------------------------------------------
// SFT

/**
 * `arithmetic-tiny`: a ~0.8M-parameter character-level GPT-2 (d=128, 4 layers, 4 heads,
 * context 32) trained from scratch on generated 2-digit addition ("23+45=" -> "68"; 5,000
 * training and 500 held-out problems, no prompt shared), sized to finish in minutes on a
 * 2-core CPU with the wasm backend. The GRPO arithmetic demo starts from this preset with
 * 1000 steps on imperfect demonstrations (`model.warmStart` in grpo-config.ts: 60 % of the
 * carries forgotten), so the verifier has something to correct; see docs/grpo.md. On
 * correct data, held-out greedy exact-match accuracy by budget (seed 0, wasm,
 * measured on a shared 2-core machine; CPU time is the process's user time):
 *
 * | steps | eval/accuracy | eval/loss | wall-clock | CPU time |
 * | ----- | ------------- | --------- | ---------- | -------- |
 * | 200   | 10.6 %        | 0.889     | 2m 28s     | 64 s     |
 * | 500   | 35.0 %        | 0.555     | 5m 56s     | 147 s    |
 * | 1000  | 91.2 %        | 0.073     | 7m 49s     | 263 s    |
 *
 * The default, 500, is the mediocre start: right about a third of the time.
 */
const ARITHMETIC_TINY = {
  model: {
    init: { architecture: 'gpt2', hiddenSize: 128, layers: 4, heads: 4, contextLength: 32 },
  },
  data: {
    generate: { task: 'arithmetic', trainSize: 5000, testSize: 500, digits: [2, 2], operations: ['+'], format: 'plain', seed: 0 },
  },
  steps: 500,
  batchSize: 64,
  learningRate: 1e-3,
  warmupSteps: 50,
  minLrRatio: 0.1,
  weightDecay: 0.01,
  gradClip: 1,
  evalEvery: 100,
  evalSize: 500,
  logEvery: 10,
  saveEvery: 0,
  seed: 0,
  outDir: 'runs/sft-arithmetic-tiny',
};

export const SFT_PRESETS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'arithmetic-tiny': ARITHMETIC_TINY,
};

/**
 * A preset with another training budget: `steps`, with the preset's warm-up capped at it (a
 * preset's `warmupSteps` is sized for its own budget; `--steps 20` on a 50-step warm-up
 * would otherwise be refused). An explicit `warmupSteps` (`--set`, `--config`) still wins.
 */
export function presetWithSteps(preset: Record<string, unknown>, steps: number): Record<string, unknown> {
  const warmup = typeof preset['warmupSteps'] === 'number' ? Math.min(preset['warmupSteps'], steps) : undefined;
  return { ...preset, steps, ...(warmup === undefined ? {} : { warmupSteps: warmup }) };
}

/** A deep copy of the named SFT preset; unknown names list the known ones. */
export function sftPreset(name: string): Record<string, unknown> {
  const preset = SFT_PRESETS[name];
  if (!preset) throw new Error(`unknown SFT preset "${name}"; available: ${Object.keys(SFT_PRESETS).join(', ')}`);
  return structuredClone(preset) as Record<string, unknown>;
}
