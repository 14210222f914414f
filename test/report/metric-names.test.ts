import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allMetricNames, METRIC_NAMES } from '../../src/report/metric-names.ts';

const root = join(import.meta.dirname, '..', '..');
const glossary = readFileSync(join(root, 'docs', 'metrics.md'), 'utf8');

/** The metric names that docs/metrics.md defines: the first cell of each table row. */
function documentedNames(): string[] {
  return [...glossary.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

describe('METRIC_NAMES', () => {
  it('every name has a row in docs/metrics.md', () => {
    const documented = new Set(documentedNames());
    const missing = allMetricNames().filter((n) => !documented.has(n));
    expect(missing).toEqual([]);
  });

  it('every documented name is a constant (docs and code list the same names)', () => {
    const names = new Set(allMetricNames());
    expect(documentedNames().filter((n) => !names.has(n))).toEqual([]);
    expect(documentedNames().length).toBe(new Set(documentedNames()).size); // no duplicate rows
  });

  it('covers the names each trainer logs', () => {
    const names = new Set(allMetricNames());
    const grpo = ['reward/mean', 'reward/std', 'reward/<fn>/mean', 'reward/<fn>/errors', 'reward/frac_zero_std', 'train/loss', 'train/kl',
      'train/entropy', 'train/clip_ratio/low', 'train/clip_ratio/high', 'train/clip_ratio/region', 'train/grad_norm', 'train/learning_rate',
      'rollout/completion_length/mean', 'rollout/completion_length/min', 'rollout/completion_length/max', 'rollout/truncated_ratio',
      'time/generate_s', 'time/reward_s', 'time/train_s', 'throughput/tokens_per_s', 'eval/accuracy'];
    const control = ['rollout/ep_return', 'rollout/ep_length', 'train/policy_loss', 'train/value_loss', 'train/entropy', 'train/approx_kl',
      'train/clip_frac', 'train/explained_variance', 'time/steps_per_s'];
    const sft = ['train/loss', 'train/learning_rate', 'train/grad_norm', 'eval/accuracy', 'eval/loss', 'throughput/tokens_per_s'];
    for (const n of [...grpo, ...control, ...sft]) expect(names.has(n), n).toBe(true);
  });

  it('builds per-function names and rejects names that would break the namespace', () => {
    expect(METRIC_NAMES.reward.fnMean('correct')).toBe('reward/correct/mean');
    expect(METRIC_NAMES.reward.fnErrors('format_check')).toBe('reward/format_check/errors');
    expect(() => METRIC_NAMES.reward.fnMean('a/b')).toThrow(/reward function name must be non-empty without "\/" or spaces, got "a\/b"/);
    expect(() => METRIC_NAMES.reward.fnMean('')).toThrow(/got ""/);
    expect(() => METRIC_NAMES.reward.fnErrors('has space')).toThrow(/got "has space"/);
  });

  it('names follow namespace/metric[/stat] in lower snake case', () => {
    for (const n of allMetricNames()) expect(n).toMatch(/^[a-z]+\/(<fn>|[a-z_]+)(\/[a-z_]+)?$/);
  });
});

describe('src/report imports', () => {
  it('never imports tfjs (directly)', () => {
    const dir = join(root, 'src', 'report');
    let seen = 0;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = readFileSync(join(dir, f), 'utf8');
      const imports = [...src.matchAll(/^\s*import\b[^'"]*['"]([^'"]+)['"]/gm), ...src.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
      seen += imports.length;
      for (const spec of imports) {
        expect(spec, `${f} imports ${spec}`).not.toMatch(/tensorflow|onnxruntime/);
        // only siblings in src/report, and the node-only atomic writer every module shares
        if (spec.startsWith('.')) expect(spec, `${f} imports ${spec}`).toMatch(/^(\.\/[\w-]+|\.\.\/core\/atomic)\.ts$/);
      }
    }
    expect(seen).toBeGreaterThan(10); // the import scan itself works
  });
});
