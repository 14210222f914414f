import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  comparisonCharts,
  comparisonHtml,
  comparisonMarkdown,
  cumulative,
  loadComparison,
  mergeByStep,
  resolveTargetAccuracy,
  summarizeComparison,
  writeComparison,
  type ComparisonRun,
} from '../../src/report/compare.ts';
import { METRIC_NAMES as M } from '../../src/report/metric-names.ts';
import { MetricsWriter, type MetricRecord } from '../../src/report/metrics.ts';

interface FakeRun {
  algorithm: string;
  seed: number;
  /** Accuracy at steps 0, 5, 10 (fewer when the run stops early). */
  evals: number[];
  /** Training steps logged (1..steps). */
  steps: number;
  stepS: number;
  tokens: number;
  /** Per-step phase seconds (time/* key -> seconds). */
  phases: Record<string, number>;
  tensorMb: (step: number) => number;
  rssMb: number;
  critic?: boolean;
  error?: string | null;
  peakRssMb?: number | null;
}

/** Writes a run folder the way the trainers do: a training line per step, an eval line after it at evaluation steps. */
function writeRun(root: string, fake: FakeRun): ComparisonRun {
  const outDir = join(root, `${fake.algorithm.replace(/[^a-z0-9]/gi, '_')}-seed${fake.seed}`);
  const metrics = MetricsWriter.open(join(outDir, 'metrics.jsonl'));
  metrics.log(0, { [M.eval.accuracy]: fake.evals[0]! });
  for (let step = 1; step <= fake.steps; step++) {
    metrics.log(step, {
      [M.reward.mean]: step / 10,
      [M.train.kl]: step / 1000,
      [M.train.entropy]: 2 - step / 10,
      [M.rollout.completionLengthMean]: 20 + step,
      [M.rollout.tokens]: fake.tokens,
      [M.time.stepS]: fake.stepS,
      ...fake.phases,
      [M.memory.tensorMb]: fake.tensorMb(step),
      [M.memory.rssMb]: fake.rssMb + step,
      ...(fake.critic ? { [M.critic.explainedVariance]: step / 10, [M.critic.valueLoss]: 1 / step } : {}),
    });
    const at = step / 5;
    if (Number.isInteger(at) && fake.evals[at] !== undefined) metrics.log(step, { [M.eval.accuracy]: fake.evals[at]! });
  }
  metrics.close();
  return { algorithm: fake.algorithm, seed: fake.seed, outDir, error: fake.error ?? null, seconds: fake.steps * fake.stepS + 7, peakRssMb: fake.peakRssMb === undefined ? null : fake.peakRssMb };
}

const GRPO_PHASES = (g: number, ref: number, pol: number) => ({ [M.time.generateS]: g, [M.time.rewardS]: 0.1, [M.time.referenceS]: ref, [M.time.policyUpdateS]: pol });
const PPO_PHASES = { [M.time.generateS]: 1.2, [M.time.rewardS]: 0.1, [M.time.referenceS]: 0.2, [M.time.valuesS]: 0.5, [M.time.criticUpdateS]: 1.0, [M.time.policyUpdateS]: 0.8 };

/**
 * Two GRPO seeds and two PPO seeds, PPO seed 1 crashed after step 7. Final accuracies:
 * GRPO 0.6, 0.8 (mean 0.7); PPO 0.7, 0.4 -> auto target floor(0.9 x 0.7 / 0.05) x 0.05 = 0.6.
 */
function fixture(grpoLabel = 'grpo'): { root: string; runs: ComparisonRun[] } {
  const root = mkdtempSync(join(tmpdir(), 'rlvr-compare-'));
  const runs = [
    writeRun(root, { algorithm: grpoLabel, seed: 0, evals: [0.2, 0.6, 0.6], steps: 10, stepS: 2, tokens: 100, phases: GRPO_PHASES(1.2, 0.2, 0.4), tensorMb: (s) => 50 + s, rssMb: 300, peakRssMb: 400 }),
    writeRun(root, { algorithm: 'ppo', seed: 0, evals: [0.2, 0.6, 0.7], steps: 10, stepS: 4, tokens: 100, phases: PPO_PHASES, tensorMb: () => 90, rssMb: 600, critic: true, peakRssMb: 700 }),
    writeRun(root, { algorithm: grpoLabel, seed: 1, evals: [0.2, 0.3, 0.8], steps: 10, stepS: 3, tokens: 120, phases: GRPO_PHASES(1.8, 0.3, 0.6), tensorMb: (s) => 60 + s, rssMb: 300, peakRssMb: 500 }),
    writeRun(root, { algorithm: 'ppo', seed: 1, evals: [0.2, 0.4], steps: 7, stepS: 4, tokens: 100, phases: PPO_PHASES, tensorMb: () => 110, rssMb: 650, critic: true, error: 'value loss is NaN at step 8', peakRssMb: null }),
  ];
  return { root, runs };
}

describe('reading runs', () => {
  it('merges an eval line into the training line of its step', () => {
    const rows = mergeByStep([
      { step: 0, time: 't0', [M.eval.accuracy]: 0.1 },
      { step: 5, time: 't1', [M.reward.mean]: 0.5 },
      { step: 5, time: 't2', [M.eval.accuracy]: 0.3 },
    ]);
    expect(rows).toEqual([
      { step: 0, time: 't0', [M.eval.accuracy]: 0.1 },
      { step: 5, time: 't2', [M.reward.mean]: 0.5, [M.eval.accuracy]: 0.3 },
    ]);
  });

  it('sums a per-step metric, a line logged every k steps standing for k steps, nulls skipped', () => {
    const rows: MetricRecord[] = [
      { step: 0, time: '', [M.eval.accuracy]: 0 },
      { step: 2, time: '', [M.time.stepS]: 3 },
      { step: 4, time: '', [M.time.stepS]: null },
      { step: 6, time: '', [M.time.stepS]: 1 },
    ];
    expect(cumulative(rows, M.time.stepS)).toEqual([
      [2, 6],
      [6, 10],
    ]);
  });

  it('places each evaluation at its cumulative training seconds and tokens', () => {
    const { runs } = fixture();
    const loaded = loadComparison(runs);
    expect(loaded[0]!.evals).toEqual([
      { step: 0, accuracy: 0.2, seconds: 0, tokens: 0 },
      { step: 5, accuracy: 0.6, seconds: 10, tokens: 500 },
      { step: 10, accuracy: 0.6, seconds: 20, tokens: 1000 },
    ]);
    expect(loaded[3]!.evals.map((e) => e.step)).toEqual([0, 5]);
    expect(loaded[3]!.rows[loaded[3]!.rows.length - 1]!.step).toBe(7);
  });

  it('reads a crashed run without metrics.jsonl as an empty log', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlvr-compare-empty-'));
    const [run] = loadComparison([{ algorithm: 'ppo', seed: 3, outDir: dir, error: 'out of memory', seconds: 1, peakRssMb: null }]);
    expect(run!.hasMetrics).toBe(false);
    expect(run!.rows).toEqual([]);
    const summary = summarizeComparison([run!]);
    expect(summary.target.value).toBeNull();
    expect(summary.algorithms[0]!.crashes).toBe(1);
    expect(summary.algorithms[0]!.finalAccuracy).toEqual({ mean: null, std: null, n: 0 });
    expect(comparisonMarkdown([run!])).toContain('| final accuracy | n/a |');
  });
});

describe('summarizeComparison', () => {
  const { runs } = fixture();
  const loaded = loadComparison(runs);
  const summary = summarizeComparison(loaded);
  const [grpo, ppo] = summary.algorithms;

  it('groups by algorithm in first-seen order', () => {
    expect(summary.algorithms.map((a) => [a.algorithm, a.seeds])).toEqual([
      ['grpo', 2],
      ['ppo', 2],
    ]);
  });

  it('chooses the target as 90 % of the best mean final accuracy, rounded down to 5 points', () => {
    expect(summary.target).toEqual({ value: 0.6, auto: true });
    expect(resolveTargetAccuracy(loaded, 0.65)).toEqual({ value: 0.65, auto: false });
    expect(() => resolveTargetAccuracy(loaded, 1.5)).toThrow(/targetAccuracy must be in \(0, 1\]/);
  });

  it('computes accuracy means and population stds over seeds', () => {
    expect(grpo!.startAccuracy.mean).toBeCloseTo(0.2, 12);
    expect(grpo!.startAccuracy.std).toBeCloseTo(0, 12);
    expect(grpo!.finalAccuracy.mean).toBeCloseTo(0.7, 12);
    expect(grpo!.finalAccuracy.std).toBeCloseTo(0.1, 12);
    expect(grpo!.bestAccuracy.mean).toBeCloseTo(0.7, 12);
    // The crashed PPO seed counts with its last evaluation (0.4, at step 5).
    expect(ppo!.finalAccuracy.mean).toBeCloseTo(0.55, 12);
    expect(ppo!.finalAccuracy.std).toBeCloseTo(0.15, 12);
    expect(ppo!.finalAccuracy.n).toBe(2);
  });

  it('measures steps, training seconds and tokens to the target over the seeds that reached it', () => {
    // GRPO seed 0 reaches 0.6 at step 5 (10 s, 500 tokens); seed 1 at step 10 (30 s, 1200 tokens).
    expect(grpo!.stepsToTarget).toEqual({ mean: 7.5, std: 2.5, reached: 2, of: 2 });
    expect(grpo!.secondsToTarget).toEqual({ mean: 20, std: 10, reached: 2, of: 2 });
    expect(grpo!.tokensToTarget).toEqual({ mean: 850, std: 350, reached: 2, of: 2 });
    expect(ppo!.stepsToTarget).toEqual({ mean: 5, std: 0, reached: 1, of: 2 });
    expect(ppo!.secondsToTarget).toEqual({ mean: 20, std: 0, reached: 1, of: 2 });
  });

  it('counts crashes and averages time per step and per phase', () => {
    expect(grpo!.crashes).toBe(0);
    expect(ppo!.crashes).toBe(1);
    expect(grpo!.secondsPerStep).toEqual({ mean: 2.5, std: 0.5, n: 2 });
    expect(grpo!.phaseSeconds.generate).toBeCloseTo(1.5, 12);
    expect(grpo!.phaseSeconds.reference).toBeCloseTo(0.25, 12);
    expect(grpo!.phaseSeconds['policy update']).toBeCloseTo(0.5, 12);
    expect(grpo!.phaseSeconds.values).toBeNull();
    expect(grpo!.phaseSeconds['critic update']).toBeNull();
    expect(grpo!.phaseSeconds.other).toBeCloseTo(0.15, 12);
    expect(ppo!.phaseSeconds['critic update']).toBeCloseTo(1.0, 12);
    expect(ppo!.phaseSeconds.values).toBeCloseTo(0.5, 12);
    expect(ppo!.phaseSeconds.other).toBeCloseTo(0.2, 12);
  });

  it('takes peak memory per run (RSS from the orchestrator, else the largest logged)', () => {
    expect(grpo!.peakTensorMb).toEqual({ mean: 65, std: 5, n: 2 });
    expect(grpo!.peakRssMb).toEqual({ mean: 450, std: 50, n: 2 });
    // PPO seed 1 has no orchestrator figure: its largest memory/rss_mb, 650 + 7.
    expect(summary.runs[3]!.peakRssMb).toBe(657);
    expect(ppo!.peakRssMb.mean).toBeCloseTo((700 + 657) / 2, 12);
  });

  it('reports the critic only for runs that have one', () => {
    expect(grpo!.finalExplainedVariance).toBeNull();
    // Seed 0: mean of 0.1..1.0 = 0.55; seed 1 (7 steps): mean of 0.1..0.7 = 0.4.
    expect(ppo!.finalExplainedVariance).toBeCloseTo(0.475, 12);
  });
});

describe('comparisonMarkdown', () => {
  const { runs } = fixture();
  const loaded = loadComparison(runs);
  const md = comparisonMarkdown(loaded, { title: 'arith', machine: '2 vCPU, Node 20, tfjs-wasm', settings: { steps: 10, temperature: 1 } });

  it('has the summary rows with the numbers', () => {
    expect(md).toContain('# arith');
    expect(md).toContain('Machine: 2 vCPU, Node 20, tfjs-wasm');
    expect(md).toContain('Target accuracy: 60.0 % (chosen automatically');
    expect(md).toContain('|  | grpo | ppo |');
    expect(md).toContain('| final accuracy | 70.0 % ± 10.0 % | 55.0 % ± 15.0 % |');
    expect(md).toContain('| best accuracy | 70.0 % ± 10.0 % | 55.0 % ± 15.0 % |');
    expect(md).toContain('| steps to target | 7.5 ± 2.5 (2 of 2 seeds reached it) | 5 (1 of 2 seeds reached it) |');
    expect(md).toContain('| training seconds to target | 20 s ± 10 s (2 of 2 seeds reached it) | 20 s (1 of 2 seeds reached it) |');
    expect(md).toContain('| generated tokens to target | 850 ± 350 (2 of 2 seeds reached it) | 500 (1 of 2 seeds reached it) |');
    expect(md).toContain('| seconds per step | 2.50 s ± 0.50 s | 4 s ± 0 s |');
    expect(md).toContain('| time per step: generate | 1.5 s (60 %) | 1.2 s (30 %) |');
    expect(md).toContain('| time per step: critic update | – | 1 s (25 %) |');
    expect(md).toContain('| peak tensor memory | 65 MiB ± 5 MiB | 100 MiB ± 10 MiB |');
    expect(md).toContain('| crashes | 0 of 2 | 1 of 2 |');
    expect(md).toContain('| critic explained variance (last 10 steps) | – | 0.475 |');
  });

  it('has the settings, a row per seed and the crash message', () => {
    expect(md).toContain('| steps | 10 |');
    expect(md).toContain('| ppo | 1 | crashed | 7 | 40.0 % | 40.0 % | – | – | – | 28 s | 35 s | 657 MiB |');
    expect(md).toContain('| grpo | 0 | finished | 10 | 60.0 % | 60.0 % | 5 | 10 s | 500 | 20 s | 27 s | 400 MiB |');
    expect(md).toContain('- ppo seed 1 crashed after step 7: value loss is NaN at step 8');
  });

  it('says n/a when no seed reached the target', () => {
    const high = comparisonMarkdown(loaded, { targetAccuracy: 0.95 });
    expect(high).toContain('| steps to target | n/a (0 of 2 seeds reached it) | n/a (0 of 2 seeds reached it) |');
    expect(high).toContain('Target accuracy: 95.0 %; reported');
  });
});

describe('comparisonHtml', () => {
  it('draws one SVG per chart, with titles and per-seed notes', async () => {
    const { runs } = fixture();
    const loaded = loadComparison(runs);
    const charts = comparisonCharts(loaded);
    const html = await comparisonHtml(loaded, { title: 'arith', machine: 'test box' });
    expect((html.match(/<svg[\s>]/g) ?? []).length).toBe(charts.length);
    expect(charts.length).toBe(9);
    for (const title of ['held-out accuracy vs steps', 'held-out accuracy vs training seconds', 'held-out accuracy vs generated tokens', M.reward.mean, M.train.kl, M.train.entropy, M.rollout.completionLengthMean, M.critic.explainedVariance]) {
      expect(html).toContain(title);
    }
    expect(html).toContain("Content-Security-Policy\" content=\"default-src 'none'");
    expect(html).toContain('Machine: test box');
    // The crashed PPO seed has evaluations at steps 0 and 5 only: the mean uses those.
    expect(html).toContain('ppo: mean ± std of 2 seeds; at the 2 of 3 points every seed has (last logged steps 10, 5).');
  });

  it('gives an algorithm the same colour in every chart, also where it is the only one drawn', async () => {
    const html = await comparisonHtml(loadComparison(fixture().runs));
    const figures = html.split('<figure').slice(1);
    const critic = figures.find((f) => f.includes(`${M.critic.explainedVariance} (ppo only)`))!;
    const both = figures.find((f) => f.includes('held-out accuracy vs steps'))!;
    // vega's default palette: grpo (first) #4c78a8, ppo (second) #f58518.
    expect(both).toContain('#4c78a8');
    expect(both).toContain('#f58518');
    expect(critic).toContain('#f58518');
    expect(critic).not.toContain('#4c78a8');
  });

  it('puts the seeds on a common grid for the seconds and tokens axes', () => {
    const loaded = loadComparison(fixture().runs);
    const [, bySeconds, byTokens] = comparisonCharts(loaded);
    const grpo = bySeconds!.set.series[0]!;
    expect(grpo.name).toBe('grpo');
    // Steps 0, 5, 10: mean seconds (0, (10 + 15) / 2, (20 + 30) / 2), mean accuracy.
    expect(grpo.points.map(([x]) => x)).toEqual([0, 12.5, 25]);
    expect(grpo.points.map(([, y]) => y)).toEqual([0.2, expect.closeTo(0.45, 12), expect.closeTo(0.7, 12)]);
    expect(bySeconds!.set.band[0]).toEqual([0, expect.closeTo(0.15, 12), expect.closeTo(0.1, 12)]);
    expect(bySeconds!.set.bounds[0]).toEqual([
      [0.2, 0.2],
      [0.3, 0.6],
      [0.6, 0.8],
    ]);
    expect(byTokens!.set.series[1]!.points).toEqual([
      [0, 0.2],
      [500, 0.5],
    ]);
  });

  it('escapes a malicious algorithm label and shows a failed run as a crash', async () => {
    const { root, runs } = fixture('<script>alert(1)</script>');
    const { htmlPath, mdPath, summaries } = await writeComparison(root, runs, { title: 'x <img src=x onerror=alert(1)>' });
    expect(existsSync(htmlPath) && existsSync(mdPath)).toBe(true);
    const html = readFileSync(htmlPath, 'utf8');
    const md = readFileSync(mdPath, 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(md).not.toMatch(/<script/i);
    expect(summaries.map((s) => s.crashes)).toEqual([0, 1]);
    expect(html).toContain('<td>crashed</td>');
    expect(html).toContain('ppo seed 1 crashed after step 7: value loss is NaN at step 8');
  });

  it('shows a chart no run logged as an empty figure, without an SVG', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rlvr-compare-grpo-'));
    const runs = [writeRun(root, { algorithm: 'grpo', seed: 0, evals: [0.1, 0.2, 0.3], steps: 10, stepS: 1, tokens: 10, phases: GRPO_PHASES(0.5, 0.1, 0.2), tensorMb: () => 1, rssMb: 1 })];
    const html = await comparisonHtml(loadComparison(runs));
    expect((html.match(/<svg[\s>]/g) ?? []).length).toBe(7);
    expect(html.match(/No run logged this\./g)?.length).toBe(2);
  });
});

describe('writeComparison', () => {
  it('writes comparison.md and comparison.html into the folder', async () => {
    const { root, runs } = fixture();
    const out = join(root, 'report');
    mkdirSync(out);
    writeFileSync(join(out, 'comparison.md'), 'old');
    const result = await writeComparison(out, runs, { targetAccuracy: 0.3 });
    expect(result.mdPath).toBe(join(out, 'comparison.md'));
    expect(result.htmlPath).toBe(join(out, 'comparison.html'));
    expect(result.target).toEqual({ value: 0.3, auto: false });
    expect(readFileSync(result.mdPath, 'utf8')).toContain('Target accuracy: 30.0 %');
    expect(result.summaries[0]!.stepsToTarget).toEqual({ mean: 5, std: 0, reached: 2, of: 2 });
  });
});
