import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { register } from '../../scripts/commands/report.ts';
import {
  defaultCharts,
  renderRunReport,
  reportFromMetricsFile,
  seriesLabels,
  summarizeMetrics,
  writeRunReport,
  type MetricsRow,
} from '../../src/report/html.ts';
import { METRIC_NAMES as M } from '../../src/report/metric-names.ts';
import { MetricsWriter, SampleWriter } from '../../src/report/metrics.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'rlvr-html-'));
}

/** A GRPO-like metric stream: every name the GRPO trainer logs, plus eval every 5 steps. */
function grpoMetrics(steps: number): MetricsRow[] {
  const rows: MetricsRow[] = [];
  for (let step = 1; step <= steps; step++) {
    const p = step / steps;
    rows.push({
      step,
      time: new Date(Date.UTC(2026, 0, 1, 0, 0, step * 2)).toISOString(),
      [M.reward.mean]: p,
      [M.reward.std]: 0.1,
      [M.reward.fnMean('correct')]: p,
      [M.reward.fnErrors('correct')]: 0,
      [M.reward.fnMean('format')]: 1,
      [M.reward.fnErrors('format')]: 0.01,
      [M.reward.fracZeroStd]: 0.5,
      [M.train.loss]: 0.1 - p / 20,
      [M.train.kl]: p / 100,
      [M.train.entropy]: 2 - p,
      [M.train.clipRatioLow]: 0,
      [M.train.clipRatioHigh]: 0.01,
      [M.train.clipRatioRegion]: 0.01,
      [M.train.gradNorm]: 1,
      [M.train.learningRate]: 1e-5,
      [M.rollout.completionLengthMean]: 20,
      [M.rollout.completionLengthMin]: 5,
      [M.rollout.completionLengthMax]: 40,
      [M.rollout.truncatedRatio]: 0,
      [M.time.generateS]: 1,
      [M.time.rewardS]: 0.1,
      [M.time.trainS]: 0.5,
      [M.throughput.tokensPerS]: 500,
      phase: 'train', // a string value: never charted
    });
    if (step % 5 === 0) rows.push({ step, time: rows[rows.length - 1]!.time, [M.eval.accuracy]: p / 2 });
  }
  return rows;
}

describe('defaultCharts', () => {
  it('groups the GRPO metrics into one chart per quantity, reward first', () => {
    const charts = defaultCharts(grpoMetrics(10));
    expect(charts.map((c) => [c.title, c.metricKeys])).toEqual([
      ['reward/mean ± std', ['reward/mean']],
      ['reward/*/mean', ['reward/correct/mean', 'reward/format/mean']],
      ['reward/*/errors', ['reward/correct/errors', 'reward/format/errors']],
      ['reward/frac_zero_std', ['reward/frac_zero_std']],
      ['eval/accuracy', ['eval/accuracy']],
      ['rollout/completion_length', ['rollout/completion_length/mean', 'rollout/completion_length/min', 'rollout/completion_length/max']],
      ['rollout/truncated_ratio', ['rollout/truncated_ratio']],
      ['train/loss', ['train/loss']],
      ['train/kl', ['train/kl']],
      ['train/entropy', ['train/entropy']],
      ['train/clip_ratio', ['train/clip_ratio/low', 'train/clip_ratio/high', 'train/clip_ratio/region']],
      ['train/grad_norm', ['train/grad_norm']],
      ['train/learning_rate', ['train/learning_rate']],
      ['time/generate_s', ['time/generate_s']],
      ['time/reward_s', ['time/reward_s']],
      ['time/train_s', ['time/train_s']],
      ['throughput/tokens_per_s', ['throughput/tokens_per_s']],
    ]);
    expect(charts[0]!.bands).toEqual({ 'reward/mean': 'reward/std' });
    expect(charts[0]!.yLabel).toBe('reward mean');
    expect(charts[1]!.yLabel).toBe('reward mean');
    expect(charts[5]!.yLabel).toBe('completion_length');
  });

  it('handles arbitrary keys: per-stat std bands, unknown namespaces last, strings and non-finite values skipped', () => {
    const rows: MetricsRow[] = [
      { step: 1, loss: 1, 'custom/a/x': 1, 'custom/b/x': 2, 'custom/b/y': 3, 'train/policy_loss': 0.1, 'z/m/mean': 1, 'z/m/std': 0.1, note: 'hi', bad: null },
      { step: 2, 'train/value_loss': Number.NaN, 'rollout/ep_return': 10 },
    ];
    const charts = defaultCharts(rows);
    expect(charts.map((c) => [c.title, c.metricKeys])).toEqual([
      ['rollout/ep_return', ['rollout/ep_return']],
      ['train/policy_loss', ['train/policy_loss']],
      ['custom/*/x', ['custom/a/x', 'custom/b/x']],
      ['custom/b', ['custom/b/y']],
      ['z/m ± std', ['z/m/mean']],
      ['loss', ['loss']],
    ]);
    expect(charts[4]!.bands).toEqual({ 'z/m/mean': 'z/m/std' });
  });
});

describe('seriesLabels', () => {
  it('drops the parts every key shares at both ends', () => {
    expect(seriesLabels(['reward/correct/mean', 'reward/format/mean'])).toEqual(['correct', 'format']);
    expect(seriesLabels(['train/clip_ratio/low', 'train/clip_ratio/high'])).toEqual(['low', 'high']);
    expect(seriesLabels(['a/x', 'b/x'])).toEqual(['a', 'b']);
    expect(seriesLabels(['train/loss'])).toEqual(['train/loss']);
    expect(seriesLabels(['a/b', 'a/b/c'])).toEqual(['b', 'b/c']);
  });
});

describe('summarizeMetrics', () => {
  it('reports the step range, wall time, tail means and eval last/best', () => {
    const s = summarizeMetrics(grpoMetrics(20));
    expect(s.steps).toBe('1–20');
    expect(s['wall time']).toBe('38s'); // steps 1..20 logged 2 s apart
    // Mean of reward/mean over steps 11..20 = mean(11..20)/20 = 15.5/20.
    expect(s['reward/mean (mean of last 10)']).toBe('0.775');
    expect(s['eval/accuracy (last)']).toBe('0.5');
    expect(s['eval/accuracy (best)']).toBe('0.5 @ step 20');
    expect(summarizeMetrics([])).toEqual({ records: 0 });
    const lossOnly = summarizeMetrics([
      { step: 0, 'eval/loss': 3 },
      { step: 1, 'eval/loss': 2 },
      { step: 2, 'eval/loss': 2.5 },
    ]);
    expect(lossOnly['eval/loss (best)']).toBe('2 @ step 1');
    expect(lossOnly['eval/loss (last)']).toBe('2.5');
    expect(lossOnly['wall time']).toBeUndefined();
  });
});

/** Everything in the page that could make a browser fetch something. */
function externalReferences(html: string): string[] {
  return [
    ...html.matchAll(/<(script|link|iframe|img|object|embed)\b[^>]*>/gi),
    ...html.matchAll(/\b(src|href|action|poster)\s*=\s*["']?\s*(https?:|\/\/|ftp:)/gi),
    ...html.matchAll(/url\(\s*["']?\s*(https?:|\/\/)/gi),
    ...html.matchAll(/@import/gi),
  ].map((m) => m[0]);
}

describe('renderRunReport', () => {
  const hostile = '<script>alert("x")</script> & <img src="http://evil.example/x.png">';

  it('is self-contained, escapes text and draws every chart', async () => {
    const metrics = grpoMetrics(30);
    const charts = [
      ...defaultCharts(metrics),
      { title: 'never logged <b>', metricKeys: ['train/missing'], yLabel: 'y' },
    ];
    const html = await renderRunReport({
      title: `GRPO ${hostile}`,
      config: { learningRate: 1e-5, model: { name: hostile }, rewards: ['correct'] },
      metrics,
      charts,
      samples: [
        { step: 5, prompt: 'What is 2+2?', completion: hostile, rewards: { correct: 1, format: null } },
        { step: 10, prompt: 'p2', completion: 'c2', rewards: { correct: 0.25 } },
      ],
      summary: { 'final reward': 0.9, note: hostile },
    });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('Content-Security-Policy');
    expect(externalReferences(html)).toEqual([]);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=&quot;http://evil.example/x.png&quot;&gt;');

    // One figure per chart, in order, each with an inline SVG unless it has no data.
    const figures = [...html.matchAll(/<figure class="chart( empty)?" data-metrics="([^"]*)">([\s\S]*?)<\/figure>/g)];
    expect(figures).toHaveLength(charts.length);
    figures.forEach((f, i) => {
      expect(f[2]).toBe(charts[i]!.metricKeys.join(' '));
      if (i < charts.length - 1) expect(f[3]!.startsWith('<svg')).toBe(true);
    });
    expect(figures[figures.length - 1]![1]).toBe(' empty');
    expect(figures[figures.length - 1]![3]).toContain('<figcaption>never logged &lt;b&gt;</figcaption>');
    expect(figures[0]![3]).toContain('reward/mean ± std');

    // Summary cards, config rows and the sample table.
    expect(html).toContain('<div class="k">final reward</div><div class="v">0.9</div>');
    expect(html).toContain('<tr><th>learningRate</th><td>1e-5</td></tr>');
    expect(html).toContain('<tr><th>rewards</th><td>[&quot;correct&quot;]</td></tr>');
    expect(html).toContain('<th>step</th><th>prompt</th><th>completion</th><th>correct</th><th>format</th>');
    expect(html).toContain('<td class="num">0.25</td><td class="num muted" title="not applicable">–</td></tr>');
  });

  it('keeps SVG ids unique across charts', async () => {
    const metrics = grpoMetrics(5);
    const html = await renderRunReport({ title: 't', metrics, samples: [] });
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(1); // the plot areas are clipped through clipPath ids
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => /^c\d+-/.test(id!))).toBe(true); // namespaced per chart
    // Every reference points at an id of its own chart.
    const figures = [...html.matchAll(/<figure class="chart" [^>]*>([\s\S]*?)<\/figure>/g)].map((m) => m[1]!);
    for (const fig of figures) {
      const own = new Set([...fig.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]));
      for (const ref of fig.matchAll(/url\(#([^)]+)\)/g)) expect(own.has(ref[1])).toBe(true);
    }
  });

  it('cuts long texts and spreads a sample subset over the run', async () => {
    const samples = Array.from({ length: 50 }, (_, i) => ({ step: i, prompt: `prompt-${i}`, completion: 'x'.repeat(i === 49 ? 5000 : 10), rewards: { r: i } }));
    const html = await renderRunReport({ title: 't', metrics: [], samples, maxSamples: 5, maxTextChars: 100 });
    const steps = [...html.matchAll(/<tr><td class="num">(\d+)<\/td><td class="prompt">/g)].map((m) => Number(m[1]));
    expect(steps).toEqual([0, 12, 25, 37, 49]);
    expect(html).toContain('5 of 50 samples');
    expect(html).toContain('… (4900 more characters)');
    expect(html).toContain('No numeric metrics were logged.');
    expect(html).toContain('No config recorded.');
  });

  it('writes the file atomically', async () => {
    const dir = tempDir();
    const path = join(dir, 'out', 'report.html');
    await writeRunReport(path, { title: 'atomic', metrics: grpoMetrics(3) });
    expect(readFileSync(path, 'utf8')).toContain('<title>atomic</title>');
    expect(readdirSync(join(dir, 'out'))).toEqual(['report.html']);
  });
});

function makeRun(dir: string): void {
  const w = MetricsWriter.open(join(dir, 'metrics.jsonl'));
  for (let s = 1; s <= 12; s++) w.log(s, { 'rollout/ep_return': s * 10, 'train/value_loss': 1 / s, 'eval/accuracy': s / 12 });
  w.close();
  const sw = SampleWriter.open(join(dir, 'samples.jsonl'));
  sw.log({ step: 4, prompt: 'Q <1>', completion: 'A <2>', rewards: { correct: 1 } });
  sw.close();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ env: 'CartPole-v1', seed: 3 }));
}

describe('reportFromMetricsFile', () => {
  it('reads metrics, samples and config from a run folder', async () => {
    const dir = tempDir();
    makeRun(dir);
    // A live run may be mid-line: the cut-off line is ignored.
    writeFileSync(join(dir, 'metrics.jsonl'), `${readFileSync(join(dir, 'metrics.jsonl'), 'utf8')}{"step":13,"rollout/ep`);
    const result = await reportFromMetricsFile(dir);
    expect(result).toEqual({ outPath: join(dir, 'report.html'), records: 12, charts: 3, samples: 1 });
    const html = readFileSync(result.outPath, 'utf8');
    expect(html).toContain(`rlvr run: ${dir.split('/').pop()}`);
    expect(html).toContain('<tr><th>env</th><td>CartPole-v1</td></tr>');
    expect(html).toContain('Q &lt;1&gt;');
    expect(html).toContain('data-metrics="rollout/ep_return"');
    expect(html).toContain('data-metrics="train/value_loss"');
  });

  it('accepts the metrics file itself and an output path, and names what is missing or broken', async () => {
    const dir = tempDir();
    makeRun(dir);
    const out = join(tempDir(), 'r.html');
    const result = await reportFromMetricsFile(join(dir, 'metrics.jsonl'), out, { title: 'My run' });
    expect(result.outPath).toBe(out);
    expect(readFileSync(out, 'utf8')).toContain('<h1>My run</h1>');

    await expect(reportFromMetricsFile(join(dir, 'nope'))).rejects.toThrow(/nope does not exist/);
    const empty = tempDir();
    await expect(reportFromMetricsFile(empty)).rejects.toThrow(/no metrics\.jsonl in/);
    writeFileSync(join(dir, 'config.json'), '{oops');
    await expect(reportFromMetricsFile(dir)).rejects.toThrow(/config\.json is not a valid config/);
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1}\nbroken\n{"step":2}\n');
    await expect(reportFromMetricsFile(dir)).rejects.toThrow(/metrics\.jsonl:2: malformed line/);
  });
});

describe('rlvr report', () => {
  it('writes the report of a run folder', async () => {
    const dir = tempDir();
    makeRun(dir);
    const out = join(dir, 'custom.html');
    const program = new Command().exitOverride();
    register(program);
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(['report', dir, '--out', out, '--max-samples', '0'], { from: 'user' });
      expect(write).toHaveBeenCalledWith(`wrote ${out} (12 metric records, 3 charts, 1 samples)\n`);
    } finally {
      write.mockRestore();
    }
    expect(existsSync(out)).toBe(true);
    expect(readFileSync(out, 'utf8')).toContain('data-metrics="eval/accuracy"');

    const bad = new Command().exitOverride();
    register(bad);
    bad.configureOutput({ writeErr: () => {} });
    await expect(bad.parseAsync(['report', dir, '--max-samples', '-2'], { from: 'user' })).rejects.toThrow(/--max-samples must be a non-negative integer/);
  });
});
