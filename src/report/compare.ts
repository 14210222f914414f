/**
 * The report of `rlvr compare`: GRPO against PPO with a critic (or any set of labelled
 * algorithms) on one task, several seeds each, read back from the runs' metrics.jsonl and
 * written as `comparison.md` (tables) and `comparison.html` (the same tables plus charts).
 * The runs themselves are trained by src/trainers/compare.ts, which hands this module the
 * finished run folders.
 *
 * Stages, each an exported function:
 *   loadComparison (read and merge each run's metrics by step, derive its eval curve)
 *   -> resolveTargetAccuracy (the accuracy whose first crossing is reported)
 *   -> summarizeComparison (per-seed and per-algorithm figures)
 *   -> comparisonMarkdown / comparisonHtml -> writeComparison (both files, atomically).
 *
 * Conventions, stated again in both outputs:
 * - "mean ± std" is over seeds; std is the population std (divide by n), the same spread
 *   the charts' bands use (`aggregateSeeds` in plot.ts).
 * - Training seconds are the sum of `time/step_s` (sampling, rewards and updates; eval and
 *   checkpoints excluded), so the two algorithms are timed on the same work. Generated
 *   tokens are the sum of `rollout/tokens`. When a run logs every `logEvery` steps, each
 *   logged value stands for the steps since the previous logged line (exact at logEvery 1).
 * - Steps / seconds / tokens to target: at the first evaluation whose accuracy is >= the
 *   target, averaged over the seeds that reached it; the count of those seeds is printed.
 * - A crashed run (error not null) counts with the metrics it logged before the crash.
 * Metric names are explained in docs/metrics.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../core/atomic.ts';
import { escapeHtml, formatCount, formatNumber } from './format.ts';
import { METRIC_NAMES as M } from './metric-names.ts';
import { readMetrics, RUN_FILES, type MetricRecord } from './metrics.ts';
import { aggregateSeeds, lineChartSpec, type LineChartOptions, type LineSeries } from './plot.ts';
import { REPORT_BASE_CSS, htmlHead, prefixSvgIds } from './html.ts';

/** One finished (or crashed) training run, as the orchestrator hands it over. */
export interface ComparisonRun {
  /** Algorithm label ('grpo', 'ppo', ...): runs are grouped by it, in first-seen order. */
  algorithm: string;
  seed: number;
  /** Run folder holding metrics.jsonl. */
  outDir: string;
  /** null when the run finished; else the error message (the run crashed; its metrics up to the crash still count). */
  error: string | null;
  /** Wall-clock seconds of the whole run as the orchestrator measured it (includes eval). */
  seconds: number;
  /** Peak RSS of the process during that run (MiB), measured by the orchestrator, or null. */
  peakRssMb: number | null;
}

export interface ComparisonReportOptions {
  /** Heading of both files. Default "GRPO vs PPO comparison". */
  title?: string;
  /**
   * Held-out accuracy (a fraction in (0, 1]) whose first crossing is reported. Default:
   * 90 % of the best algorithm's mean final accuracy, rounded down to a multiple of 0.05
   * (a level the better algorithm reaches on average and the other can be measured against);
   * none when that comes to 0.
   */
  targetAccuracy?: number;
  /** Machine description, e.g. "2 vCPU AMD EPYC, Node 20, tfjs-wasm", printed in both files. */
  machine?: string;
  /** The matched budget (setting -> value), printed as a table. */
  settings?: Readonly<Record<string, string | number>>;
}

/** One evaluation of a run, placed on the three x axes of the accuracy charts. */
export interface EvalPoint {
  step: number;
  accuracy: number;
  /** Training seconds (sum of time/step_s) up to and including this step. */
  seconds: number;
  /** Generated completion tokens (sum of rollout/tokens) up to and including this step. */
  tokens: number;
}

/** A run with its metrics read back. */
export interface LoadedRun {
  run: ComparisonRun;
  /** metrics.jsonl merged by step (an eval line joins the training line of its step), sorted by step. */
  rows: MetricRecord[];
  /** Evaluations with a finite eval/accuracy, by step. */
  evals: EvalPoint[];
  /** false when the run folder had no metrics.jsonl (the run crashed before its first line). */
  hasMetrics: boolean;
}

/** Mean and population std over seeds; null with no values (n = 0). */
export interface Stat {
  mean: number | null;
  std: number | null;
  n: number;
}

/** Steps, seconds or tokens to the target accuracy, over the seeds that reached it. */
export interface ToTarget {
  mean: number | null;
  std: number | null;
  /** Seeds that reached the target. */
  reached: number;
  /** Seeds of the algorithm. */
  of: number;
}

/** The time of one step split into phases (seconds; docs/metrics.md, "Time and throughput"). */
export const PHASES = [
  { name: 'generate', key: M.time.generateS },
  { name: 'reward', key: M.time.rewardS },
  { name: 'reference', key: M.time.referenceS },
  { name: 'values', key: M.time.valuesS },
  { name: 'critic update', key: M.time.criticUpdateS },
  { name: 'policy update', key: M.time.policyUpdateS },
] as const;
export type Phase = (typeof PHASES)[number]['name'] | 'other';

export interface TargetAccuracy {
  /** The target as a fraction, or null when there is none (auto and no run learned anything). */
  value: number | null;
  /** true when chosen from the runs (no targetAccuracy option). */
  auto: boolean;
}

/** Figures of one run. */
export interface RunSummary {
  algorithm: string;
  seed: number;
  outDir: string;
  error: string | null;
  /** Last step in metrics.jsonl (0 when nothing was logged). */
  lastStep: number;
  startAccuracy: number | null;
  finalAccuracy: number | null;
  bestAccuracy: number | null;
  stepsToTarget: number | null;
  secondsToTarget: number | null;
  tokensToTarget: number | null;
  /** Sum of time/step_s over the run. */
  trainSeconds: number;
  /** Sum of rollout/tokens over the run. */
  tokens: number;
  /** Wall-clock seconds as the orchestrator measured them (eval included). */
  wallSeconds: number;
  /** Mean time/step_s over the logged steps; null if none. */
  secondsPerStep: number | null;
  /** Mean seconds per step of each phase; null for a phase the run never logged. */
  phaseSeconds: Record<Phase, number | null>;
  peakTensorMb: number | null;
  /** The orchestrator's peak RSS, or the largest memory/rss_mb logged when it gave none. */
  peakRssMb: number | null;
  /** Mean of the last (up to) 10 logged critic/explained_variance values; null without a critic. */
  finalExplainedVariance: number | null;
  /** Mean of the last (up to) 10 logged critic/value_loss values; null without a critic. */
  finalValueLoss: number | null;
}

/** Figures of one algorithm over its seeds. */
export interface AlgorithmSummary {
  algorithm: string;
  seeds: number;
  startAccuracy: Stat;
  finalAccuracy: Stat;
  bestAccuracy: Stat;
  stepsToTarget: ToTarget;
  secondsToTarget: ToTarget;
  tokensToTarget: ToTarget;
  /** Over seeds of each seed's mean time/step_s. */
  secondsPerStep: Stat;
  /** Mean over seeds of each seed's mean seconds per step in the phase; null if no seed logged it. */
  phaseSeconds: Record<Phase, number | null>;
  peakTensorMb: Stat;
  peakRssMb: Stat;
  crashes: number;
  /** Mean over seeds of RunSummary.finalExplainedVariance; null without a critic. */
  finalExplainedVariance: number | null;
  finalValueLoss: number | null;
}

export interface ComparisonSummary {
  target: TargetAccuracy;
  algorithms: AlgorithmSummary[];
  runs: RunSummary[];
}

// ---------------------------------------------------------------------------------------
// Reading

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Lines with the same step merged into one record (a later line's value wins), sorted by step. */
export function mergeByStep(records: ReadonlyArray<MetricRecord>): MetricRecord[] {
  const byStep = new Map<number, MetricRecord>();
  for (const rec of records) {
    const prev = byStep.get(rec.step);
    byStep.set(rec.step, prev ? { ...prev, ...rec } : { ...rec });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/**
 * Running sum of a per-step metric, as [step, sum up to and including step] at each row
 * that logged it. A row logged `k` steps after the previous row with the key stands for
 * those `k` steps (logEvery > 1 logs one step's value every k steps); null values are
 * skipped, so the next logged value covers their steps.
 */
export function cumulative(rows: ReadonlyArray<MetricRecord>, key: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let prevStep = 0;
  let sum = 0;
  for (const rec of rows) {
    const v = rec[key];
    if (!finite(v) || rec.step <= prevStep) continue;
    sum += v * (rec.step - prevStep);
    prevStep = rec.step;
    out.push([rec.step, sum]);
  }
  return out;
}

/** The running sum at `step`: the last entry at or before it (0 before the first). */
function sumAt(cum: ReadonlyArray<readonly [number, number]>, step: number): number {
  let value = 0;
  for (const [s, v] of cum) {
    if (s > step) break;
    value = v;
  }
  return value;
}

/** Reads each run's metrics.jsonl (a missing file is an empty log; a line cut off by a crash is ignored). */
export function loadComparison(runs: ReadonlyArray<ComparisonRun>): LoadedRun[] {
  return runs.map((run) => {
    const path = join(run.outDir, RUN_FILES.metrics);
    const hasMetrics = existsSync(path);
    const rows = hasMetrics ? mergeByStep(readMetrics(path, { allowTruncatedTail: true })) : [];
    const seconds = cumulative(rows, M.time.stepS);
    const tokens = cumulative(rows, M.rollout.tokens);
    const evals: EvalPoint[] = [];
    for (const rec of rows) {
      const acc = rec[M.eval.accuracy];
      if (finite(acc)) evals.push({ step: rec.step, accuracy: acc, seconds: sumAt(seconds, rec.step), tokens: sumAt(tokens, rec.step) });
    }
    return { run, rows, evals, hasMetrics };
  });
}

// ---------------------------------------------------------------------------------------
// Summaries

/** Mean and population std (divide by n). */
export function meanStd(values: ReadonlyArray<number>): Stat {
  const n = values.length;
  if (n === 0) return { mean: null, std: null, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  return { mean, std, n };
}

function values(rows: ReadonlyArray<MetricRecord>, key: string): number[] {
  const out: number[] = [];
  for (const rec of rows) {
    const v = rec[key];
    if (finite(v)) out.push(v);
  }
  return out;
}

function meanOrNull(xs: ReadonlyArray<number>): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

function maxOrNull(xs: ReadonlyArray<number>): number | null {
  return xs.length ? Math.max(...xs) : null;
}

/** Groups in first-seen order of the algorithm label. */
function groupByAlgorithm<T extends { algorithm: string }>(items: ReadonlyArray<T>): Array<[string, T[]]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const g = groups.get(item.algorithm) ?? [];
    g.push(item);
    groups.set(item.algorithm, g);
  }
  return [...groups.entries()];
}

/** The option's target when given (checked), else the automatic one (see ComparisonReportOptions.targetAccuracy). */
export function resolveTargetAccuracy(loaded: ReadonlyArray<LoadedRun>, targetAccuracy?: number): TargetAccuracy {
  if (targetAccuracy !== undefined) {
    if (!(targetAccuracy > 0 && targetAccuracy <= 1)) throw new Error(`comparison: targetAccuracy must be in (0, 1], got ${targetAccuracy}`);
    return { value: targetAccuracy, auto: false };
  }
  let best = 0;
  for (const [, group] of groupByAlgorithm(loaded.map((l) => ({ algorithm: l.run.algorithm, l })))) {
    const finals = group.flatMap(({ l }) => (l.evals.length ? [l.evals[l.evals.length - 1]!.accuracy] : []));
    best = Math.max(best, meanOrNull(finals) ?? 0);
  }
  // The small epsilon keeps 0.9 x 0.5 = 0.45 from flooring to 0.40 through rounding error.
  const value = Math.floor(0.9 * best * 20 + 1e-9) / 20;
  return { value: value > 0 ? value : null, auto: true };
}

/** Figures of one run against the target (null target: nothing to reach). */
export function summarizeRun(loaded: LoadedRun, target: number | null): RunSummary {
  const { run, rows, evals } = loaded;
  const reached = target === null ? undefined : evals.find((e) => e.accuracy >= target);
  const stepSeconds = values(rows, M.time.stepS);
  const phaseSeconds = {} as Record<Phase, number | null>;
  for (const p of PHASES) phaseSeconds[p.name] = meanOrNull(values(rows, p.key));
  // "other": what the step took beyond its named phases (batching, losses, bookkeeping).
  const other: number[] = [];
  for (const rec of rows) {
    const step = rec[M.time.stepS];
    if (!finite(step)) continue;
    other.push(PHASES.reduce((rest, p) => rest - (finite(rec[p.key]) ? (rec[p.key] as number) : 0), step));
  }
  phaseSeconds.other = meanOrNull(other);
  const tail = (key: string): number | null => meanOrNull(values(rows, key).slice(-10));
  const seconds = cumulative(rows, M.time.stepS);
  const tokens = cumulative(rows, M.rollout.tokens);
  return {
    algorithm: run.algorithm,
    seed: run.seed,
    outDir: run.outDir,
    error: run.error,
    lastStep: rows.length ? rows[rows.length - 1]!.step : 0,
    startAccuracy: evals[0]?.step === 0 ? evals[0].accuracy : null,
    finalAccuracy: evals.length ? evals[evals.length - 1]!.accuracy : null,
    bestAccuracy: maxOrNull(evals.map((e) => e.accuracy)),
    stepsToTarget: reached?.step ?? null,
    secondsToTarget: reached?.seconds ?? null,
    tokensToTarget: reached?.tokens ?? null,
    trainSeconds: seconds.length ? seconds[seconds.length - 1]![1] : 0,
    tokens: tokens.length ? tokens[tokens.length - 1]![1] : 0,
    wallSeconds: run.seconds,
    secondsPerStep: meanOrNull(stepSeconds),
    phaseSeconds,
    peakTensorMb: maxOrNull(values(rows, M.memory.tensorMb)),
    peakRssMb: run.peakRssMb ?? maxOrNull(values(rows, M.memory.rssMb)),
    finalExplainedVariance: tail(M.critic.explainedVariance),
    finalValueLoss: tail(M.critic.valueLoss),
  };
}

function present(xs: ReadonlyArray<number | null>): number[] {
  return xs.filter((x): x is number => x !== null);
}

function toTarget(xs: ReadonlyArray<number | null>): ToTarget {
  const s = meanStd(present(xs));
  return { mean: s.mean, std: s.std, reached: s.n, of: xs.length };
}

/** Per-seed and per-algorithm figures (algorithms in first-seen order). */
export function summarizeComparison(loaded: ReadonlyArray<LoadedRun>, options: Pick<ComparisonReportOptions, 'targetAccuracy'> = {}): ComparisonSummary {
  const target = resolveTargetAccuracy(loaded, options.targetAccuracy);
  const runs = loaded.map((l) => summarizeRun(l, target.value));
  const algorithms = groupByAlgorithm(runs).map(([algorithm, group]): AlgorithmSummary => {
    const phaseSeconds = {} as Record<Phase, number | null>;
    for (const name of [...PHASES.map((p) => p.name), 'other'] as Phase[]) phaseSeconds[name] = meanOrNull(present(group.map((r) => r.phaseSeconds[name])));
    return {
      algorithm,
      seeds: group.length,
      startAccuracy: meanStd(present(group.map((r) => r.startAccuracy))),
      finalAccuracy: meanStd(present(group.map((r) => r.finalAccuracy))),
      bestAccuracy: meanStd(present(group.map((r) => r.bestAccuracy))),
      stepsToTarget: toTarget(group.map((r) => r.stepsToTarget)),
      secondsToTarget: toTarget(group.map((r) => r.secondsToTarget)),
      tokensToTarget: toTarget(group.map((r) => r.tokensToTarget)),
      secondsPerStep: meanStd(present(group.map((r) => r.secondsPerStep))),
      phaseSeconds,
      peakTensorMb: meanStd(present(group.map((r) => r.peakTensorMb))),
      peakRssMb: meanStd(present(group.map((r) => r.peakRssMb))),
      crashes: group.filter((r) => r.error !== null).length,
      finalExplainedVariance: meanOrNull(present(group.map((r) => r.finalExplainedVariance))),
      finalValueLoss: meanOrNull(present(group.map((r) => r.finalValueLoss))),
    };
  });
  return { target, algorithms, runs };
}

// ---------------------------------------------------------------------------------------
// Tables (one plain-text source, rendered as markdown and as HTML)

/**
 * How a figure is printed. `one` prints a single value; a mean ± std pair is printed with
 * both numbers at the same number of decimals: three significant digits of the mean, at
 * most `maxDecimals`, none when both are integers (so "46.7 ± 4.7", "2.90 s ± 0.01 s"),
 * or always `decimals` when set.
 */
interface Unit {
  one: (v: number) => string;
  maxDecimals: number;
  decimals?: number;
  /** Multiplies both numbers (fractions -> percent); default 1. */
  factor?: number;
  suffix: string;
  /** Scale both numbers before printing (tokens: thousands -> "K"); default none. */
  scale?: (mean: number) => { divisor: number; suffix: string };
}

const PERCENT: Unit = { one: (v) => `${(v * 100).toFixed(1)} %`, maxDecimals: 1, decimals: 1, factor: 100, suffix: ' %' };
const SECONDS: Unit = { one: (v) => `${formatNumber(v, 3)} s`, maxDecimals: 3, suffix: ' s' };
const MIB: Unit = { one: (v) => `${Math.round(v)} MiB`, maxDecimals: 0, suffix: ' MiB' };
const STEPS: Unit = { one: (v) => formatNumber(v, 3), maxDecimals: 1, suffix: '' };
const TOKENS: Unit = {
  one: (v) => formatCount(Math.round(v)),
  maxDecimals: 1,
  suffix: '',
  scale: (mean) => (Math.abs(mean) >= 1e6 ? { divisor: 1e6, suffix: 'M' } : Math.abs(mean) >= 1e3 ? { divisor: 1e3, suffix: 'K' } : { divisor: 1, suffix: '' }),
};

function plusMinus(mean: number, std: number, unit: Unit): string {
  const { divisor, suffix } = unit.scale?.(mean) ?? { divisor: 1, suffix: '' };
  const m = (mean * (unit.factor ?? 1)) / divisor;
  const d = (std * (unit.factor ?? 1)) / divisor;
  const auto = Number.isInteger(m) && Number.isInteger(d) ? 0 : m === 0 ? unit.maxDecimals : Math.min(unit.maxDecimals, Math.max(0, 2 - Math.floor(Math.log10(Math.abs(m)))));
  const decimals = unit.decimals ?? auto;
  return `${m.toFixed(decimals)}${suffix}${unit.suffix} ± ${d.toFixed(decimals)}${suffix}${unit.suffix}`;
}

function statText(s: Stat, unit: Unit, seeds: number): string {
  if (s.mean === null) return 'n/a';
  const text = s.n > 1 ? plusMinus(s.mean, s.std!, unit) : unit.one(s.mean);
  return s.n < seeds ? `${text} (${s.n} of ${seeds} seeds)` : text;
}

function targetText(t: ToTarget, unit: Unit): string {
  if (t.mean === null) return `n/a (0 of ${t.of} seeds reached it)`;
  const text = t.reached > 1 ? plusMinus(t.mean, t.std!, unit) : unit.one(t.mean);
  return `${text} (${t.reached} of ${t.of} seeds reached it)`;
}

function targetLine(target: TargetAccuracy): string {
  if (target.value === null) return 'Target accuracy: none (90 % of the best mean final accuracy rounds down to 0), so nothing is reported against it.';
  const how = target.auto ? ' (chosen automatically: 90 % of the best mean final accuracy, rounded down to a multiple of 5 points)' : '';
  return `Target accuracy: ${PERCENT.one(target.value)}${how}; reported at the first evaluation at or above it.`;
}

/** A table as text; the first column is the row's label, and columns are right-aligned numbers unless listed in `textColumns`. */
export interface Table {
  head: string[];
  rows: string[][];
  textColumns?: number[];
}

const isText = (table: Table, column: number): boolean => column === 0 || (table.textColumns ?? []).includes(column);

/** The summary: one row per figure, one column per algorithm. */
export function summaryTable(summary: ComparisonSummary): Table {
  const algs = summary.algorithms;
  const row = (label: string, cell: (a: AlgorithmSummary) => string): string[] => [label, ...algs.map(cell)];
  const phaseRow = (name: Phase): string[] =>
    row(`time per step: ${name}`, (a) => {
      const v = a.phaseSeconds[name];
      const total = a.secondsPerStep.mean;
      if (v === null) return '–';
      return total !== null && total > 0 ? `${SECONDS.one(v)} (${Math.round((100 * v) / total)} %)` : SECONDS.one(v);
    });
  const phases: Phase[] = [...PHASES.map((p) => p.name), 'other'];
  const rows = [
    row('seeds', (a) => String(a.seeds)),
    row('start accuracy (step 0)', (a) => statText(a.startAccuracy, PERCENT, a.seeds)),
    row('final accuracy', (a) => statText(a.finalAccuracy, PERCENT, a.seeds)),
    row('best accuracy', (a) => statText(a.bestAccuracy, PERCENT, a.seeds)),
    row('steps to target', (a) => targetText(a.stepsToTarget, STEPS)),
    row('training seconds to target', (a) => targetText(a.secondsToTarget, SECONDS)),
    row('generated tokens to target', (a) => targetText(a.tokensToTarget, TOKENS)),
    row('seconds per step', (a) => statText(a.secondsPerStep, SECONDS, a.seeds)),
    ...phases.filter((name) => algs.some((a) => a.phaseSeconds[name] !== null)).map(phaseRow),
    row('peak tensor memory', (a) => statText(a.peakTensorMb, MIB, a.seeds)),
    row('peak RSS', (a) => statText(a.peakRssMb, MIB, a.seeds)),
    row('crashes', (a) => `${a.crashes} of ${a.seeds}`),
  ];
  if (algs.some((a) => a.finalExplainedVariance !== null)) {
    rows.push(row('critic explained variance (last 10 steps)', (a) => (a.finalExplainedVariance === null ? '–' : formatNumber(a.finalExplainedVariance, 3))));
    rows.push(row('critic value loss (last 10 steps)', (a) => (a.finalValueLoss === null ? '–' : formatNumber(a.finalValueLoss, 3))));
  }
  return { head: ['', ...algs.map((a) => a.algorithm)], rows };
}

/** One row per run. */
export function seedTable(summary: ComparisonSummary): Table {
  const opt = (v: number | null, f: (v: number) => string): string => (v === null ? '–' : f(v));
  return {
    head: ['algorithm', 'seed', 'status', 'steps', 'final acc.', 'best acc.', 'steps to target', 'train s to target', 'tokens to target', 'train s', 'wall s', 'peak RSS'],
    textColumns: [2],
    // Grouped by algorithm (first-seen order), in run order within a group.
    rows: summary.algorithms.flatMap((a) => summary.runs.filter((r) => r.algorithm === a.algorithm)).map((r) => [
      r.algorithm,
      String(r.seed),
      r.error === null ? 'finished' : 'crashed',
      String(r.lastStep),
      opt(r.finalAccuracy, PERCENT.one),
      opt(r.bestAccuracy, PERCENT.one),
      opt(r.stepsToTarget, String),
      opt(r.secondsToTarget, SECONDS.one),
      opt(r.tokensToTarget, TOKENS.one),
      SECONDS.one(r.trainSeconds),
      SECONDS.one(r.wallSeconds),
      opt(r.peakRssMb, MIB.one),
    ]),
  };
}

/** Text that is safe in a markdown table cell: no line breaks, pipes escaped, no raw HTML. */
function mdCell(text: string): string {
  return text
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!)
    .replace(/\|/g, '\\|');
}

function mdTable(table: Table): string {
  const line = (cells: string[]): string => `| ${cells.map(mdCell).join(' | ')} |`;
  return [line(table.head), `|${table.head.map((_, i) => (isText(table, i) ? ' --- ' : ' ---: ')).join('|')}|`, ...table.rows.map(line)].join('\n');
}

function htmlTable(table: Table, className: string): string {
  const head = `<tr>${table.head.map((h, i) => `<th${isText(table, i) ? '' : ' class="num"'}>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const rows = table.rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th>${escapeHtml(c)}</th>` : `<td${isText(table, i) ? '' : ' class="num"'}>${escapeHtml(c)}</td>`)).join('')}</tr>`);
  return `<table class="${className}"><thead>${head}</thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function settingsTable(settings: Readonly<Record<string, string | number>> | undefined): Table | null {
  const entries = Object.entries(settings ?? {});
  return entries.length ? { head: ['setting', 'value'], rows: entries.map(([k, v]) => [k, typeof v === 'number' ? formatNumber(v, 6) : v]), textColumns: [1] } : null;
}

function crashLines(summary: ComparisonSummary): string[] {
  const clipText = (t: string): string => (t.length > 500 ? `${t.slice(0, 500)}… (${t.length - 500} more characters)` : t);
  return summary.runs.filter((r) => r.error !== null).map((r) => `${r.algorithm} seed ${r.seed} crashed after step ${r.lastStep}: ${clipText(r.error!)}`);
}

const NOTES = [
  'mean ± std is over seeds; std is the population std (divide by n), the same spread the charts\' bands show.',
  'Training seconds are the sum of time/step_s (sampling, rewards, updates; evaluation and checkpoints excluded); wall s is the whole run as the orchestrator timed it.',
  'Final accuracy is each seed\'s last evaluation; best accuracy its highest, step 0 included. Steps, seconds and tokens to target are taken at the first evaluation at or above the target and averaged over the seeds that reached it.',
  'Time per step: each phase\'s mean seconds per step and its share of the step; "other" is the step minus its named phases.',
  'Peak RSS is the process\'s: the seeds run in turn in one process, so memory an earlier run did not give back to the OS counts in a later run. Peak tensor memory is per run.',
  'A crashed run counts with the metrics it logged before the crash.',
];

const DEFAULT_TITLE = 'GRPO vs PPO comparison';

/** comparison.md: title, machine, target, the summary, the matched settings, a row per seed, crashes. */
export function comparisonMarkdown(loaded: ReadonlyArray<LoadedRun>, options: ComparisonReportOptions = {}): string {
  const summary = summarizeComparison(loaded, options);
  const out = [`# ${mdCell(options.title ?? DEFAULT_TITLE)}`, ''];
  if (options.machine) out.push(`Machine: ${mdCell(options.machine)}`, '');
  out.push(targetLine(summary.target), '', '## Summary', '', mdTable(summaryTable(summary)), '');
  const settings = settingsTable(options.settings);
  if (settings) out.push('## Matched settings', '', mdTable(settings), '');
  out.push('## Per seed', '', mdTable(seedTable(summary)), '');
  const crashes = crashLines(summary);
  if (crashes.length) out.push('## Crashes', '', ...crashes.map((c) => `- ${mdCell(c)}`), '');
  out.push('## Notes', '', ...NOTES.map((n) => `- ${n}`), '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------
// Charts

/** A chart's data: one mean line and band per algorithm, and what the caption should say. */
export interface ChartSeriesSet {
  series: LineSeries[];
  band: number[][];
  bounds: Array<Array<[number, number]>>;
  notes: string[];
}

/**
 * Mean and std over seeds at the x values every seed has; seeds with no points at all are
 * left out (and named in the notes). Each seed's points are [key, y, x] triples, where `key`
 * identifies the point across seeds (the step) and x is where it is drawn; the drawn x is
 * the mean over seeds of x (for steps, x = key). The band is cut to the seeds' min and max.
 */
function aggregateGroup(algorithm: string, seeds: ReadonlyArray<{ seed: number; points: Array<[number, number, number]> }>, out: ChartSeriesSet): void {
  const withData = seeds.filter((s) => s.points.length > 0);
  const without = seeds.filter((s) => s.points.length === 0).map((s) => s.seed);
  if (withData.length === 0) return;
  const common = withData
    .map((s) => new Set(s.points.map((p) => p[0])))
    .reduce((a, b) => new Set([...a].filter((k) => b.has(k))));
  const keys = [...common].sort((a, b) => a - b);
  if (keys.length === 0) {
    out.notes.push(`${algorithm}: the seeds share no logged step, so nothing is drawn.`);
    return;
  }
  const picked = withData.map((s) => keys.map((k) => s.points.find((p) => p[0] === k)!));
  const { points, spread } = aggregateSeeds(picked.map((ps) => ps.map(([k, y]) => [k, y] as [number, number])));
  const meanX = keys.map((_, j) => picked.reduce((a, ps) => a + ps[j]![2], 0) / picked.length);
  out.series.push({ name: algorithm, points: points.map(([, y], j) => [meanX[j]!, y]) });
  out.band.push(spread);
  out.bounds.push(keys.map((_, j) => [Math.min(...picked.map((ps) => ps[j]![1])), Math.max(...picked.map((ps) => ps[j]![1]))]));
  const union = new Set(withData.flatMap((s) => s.points.map((p) => p[0])));
  const parts = [`${algorithm}: mean ± std of ${withData.length} seed${withData.length === 1 ? '' : 's'}`];
  if (union.size > keys.length) parts.push(`at the ${keys.length} of ${union.size} points every seed has (last logged steps ${withData.map((s) => Math.max(...s.points.map((p) => p[0]))).join(', ')})`);
  if (without.length) parts.push(`seed${without.length === 1 ? '' : 's'} ${without.join(', ')} logged none`);
  out.notes.push(`${parts.join('; ')}.`);
}

function perStepSet(loaded: ReadonlyArray<LoadedRun>, key: string): ChartSeriesSet {
  const out: ChartSeriesSet = { series: [], band: [], bounds: [], notes: [] };
  for (const [algorithm, group] of groupByAlgorithm(loaded.map((l) => ({ algorithm: l.run.algorithm, l })))) {
    const seeds = group.map(({ l }) => ({
      seed: l.run.seed,
      points: l.rows.flatMap((r): Array<[number, number, number]> => (finite(r[key]) ? [[r.step, r[key] as number, r.step]] : [])),
    }));
    aggregateGroup(algorithm, seeds, out);
  }
  return out;
}

/**
 * Accuracy against steps, training seconds or generated tokens. The seeds of one algorithm
 * evaluate at the same steps but reach them at different times and token counts, so the
 * points are matched by step: the n-th point of the line is the mean accuracy after that
 * many steps, drawn at the seeds' mean seconds (tokens) at that step. The band is the std of
 * the accuracy at that step; the seeds' spread along x is not drawn (the tables give the
 * spread of seconds and tokens to the target).
 */
function accuracySet(loaded: ReadonlyArray<LoadedRun>, x: 'step' | 'seconds' | 'tokens'): ChartSeriesSet {
  const out: ChartSeriesSet = { series: [], band: [], bounds: [], notes: [] };
  for (const [algorithm, group] of groupByAlgorithm(loaded.map((l) => ({ algorithm: l.run.algorithm, l })))) {
    const seeds = group.map(({ l }) => ({ seed: l.run.seed, points: l.evals.map((e): [number, number, number] => [e.step, e.accuracy, e[x]]) }));
    aggregateGroup(algorithm, seeds, out);
  }
  return out;
}

/** One chart of comparison.html. */
export interface ComparisonChart {
  title: string;
  xLabel: string;
  yLabel: string;
  set: ChartSeriesSet;
  /** Shared by the step charts, so that a step sits at the same place in each. */
  xDomain?: [number, number];
}

/**
 * `lineChartSvg` (plot.ts) with the colour scale's domain fixed to every algorithm of the
 * comparison, so that an algorithm has the same colour in each chart, also in a chart only
 * some algorithms logged (the critic's). plot.ts has no option for that, so this builds its
 * spec with `lineChartSpec`, sets the domain, and renders it the way `lineChartSvg` does.
 */
async function comparisonChartSvg(options: LineChartOptions, algorithms: ReadonlyArray<string>): Promise<string> {
  const spec = lineChartSpec(options);
  // The spec is plain JSON; typed loosely here because vega-lite's layer types are a deep union.
  for (const layer of (spec as unknown as { layer?: Array<{ encoding?: { color?: Record<string, unknown> } }> }).layer ?? []) {
    if (layer.encoding?.color) layer.encoding.color = { ...layer.encoding.color, scale: { domain: [...algorithms] } };
  }
  const compiled = compile(spec as TopLevelSpec, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

async function renderFigure(chart: ComparisonChart, index: number, algorithms: ReadonlyArray<string>): Promise<string> {
  const notes = chart.set.notes.length ? `<figcaption>${chart.set.notes.map(escapeHtml).join('<br>')}</figcaption>` : '';
  if (chart.set.series.length === 0) {
    return `<figure class="chart empty"><div class="title">${escapeHtml(chart.title)}</div><p class="muted">No run logged this.</p></figure>`;
  }
  // A chart that draws fewer algorithms than the comparison has names them (one series has no legend).
  const drawn = chart.set.series.map((s) => s.name);
  const title = drawn.length < algorithms.length ? `${chart.title} (${drawn.join(', ')} only)` : chart.title;
  const svg = await comparisonChartSvg(
    {
      title,
      xLabel: chart.xLabel,
      yLabel: chart.yLabel,
      series: chart.set.series,
      band: chart.set.band,
      bandBounds: chart.set.bounds,
      ...(chart.xDomain ? { xDomain: chart.xDomain } : {}),
      // 460 px of plot area makes a ~530 px figure: two charts side by side in a 1200 px window.
      width: 460,
      height: 220,
    },
    algorithms,
  );
  return `<figure class="chart">${prefixSvgIds(svg, `c${index}-`)}${notes}</figure>`;
}

/** The charts of the HTML report, in order (exported so that tests can count them). */
export function comparisonCharts(loaded: ReadonlyArray<LoadedRun>): ComparisonChart[] {
  const steps = loaded.flatMap((l) => l.rows.map((r) => r.step));
  const xDomain: [number, number] | undefined = steps.length ? [Math.min(...steps), Math.max(...steps)] : undefined;
  const step = (title: string, key: string, yLabel: string): ComparisonChart => ({ title, xLabel: 'step', yLabel, set: perStepSet(loaded, key), ...(xDomain ? { xDomain } : {}) });
  return [
    { title: 'held-out accuracy vs steps', xLabel: 'step', yLabel: 'accuracy', set: accuracySet(loaded, 'step'), ...(xDomain ? { xDomain } : {}) },
    { title: 'held-out accuracy vs training seconds', xLabel: 'training seconds (sum of time/step_s)', yLabel: 'accuracy', set: accuracySet(loaded, 'seconds') },
    { title: 'held-out accuracy vs generated tokens', xLabel: 'generated completion tokens', yLabel: 'accuracy', set: accuracySet(loaded, 'tokens') },
    step(M.reward.mean, M.reward.mean, 'reward'),
    step(M.train.kl, M.train.kl, 'KL to the reference'),
    step(M.train.entropy, M.train.entropy, 'entropy (nats)'),
    step(M.rollout.completionLengthMean, M.rollout.completionLengthMean, 'tokens'),
    step(M.critic.explainedVariance, M.critic.explainedVariance, 'explained variance'),
    step(M.critic.valueLoss, M.critic.valueLoss, 'value loss'),
  ];
}

const CSS = `${REPORT_BASE_CSS}
h1 { font-size: 24px; margin: 0 0 8px; }
p.meta { margin: 2px 0; color: #424a53; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
figure.chart svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figure.chart figcaption { font-size: 12px; color: #59636e; margin: 4px 6px 2px; }
figure.empty .title { font-weight: 600; margin: 4px 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; }
tbody th { font-weight: normal; color: #424a53; white-space: nowrap; }
table.settings td, table.settings th { font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.summary td.num { white-space: normal; }
.muted { color: #8c959f; }
ul.crashes li { font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; }
ul.notes { color: #424a53; }
footer { margin-top: 36px; font-size: 12px; color: #8c959f; }
`;

/**
 * comparison.html: one self-contained file (inline CSS and SVG, no scripts, and a
 * Content-Security-Policy that forbids scripts and fetches, as the run report has) with the
 * tables of comparison.md and a chart per quantity, one line per algorithm.
 */
export async function comparisonHtml(loaded: ReadonlyArray<LoadedRun>, options: ComparisonReportOptions = {}): Promise<string> {
  const summary = summarizeComparison(loaded, options);
  const title = options.title ?? DEFAULT_TITLE;
  const charts = comparisonCharts(loaded);
  const figures: string[] = [];
  const algorithms = summary.algorithms.map((a) => a.algorithm);
  for (const [i, chart] of charts.entries()) figures.push(await renderFigure(chart, i, algorithms));
  const settings = settingsTable(options.settings);
  const crashes = crashLines(summary);
  return `${htmlHead(title, CSS)}
<body>
<main>
<header>
<h1>${escapeHtml(title)}</h1>
${options.machine ? `<p class="meta">Machine: ${escapeHtml(options.machine)}</p>\n` : ''}<p class="meta">${escapeHtml(targetLine(summary.target))}</p>
</header>
<h2>Summary</h2>
<div class="scroll">${htmlTable(summaryTable(summary), 'summary')}</div>
<h2>Charts</h2>
<section class="charts">
${figures.join('\n')}
</section>
${settings ? `<h2>Matched settings</h2>\n${htmlTable(settings, 'settings')}\n` : ''}<h2>Per seed</h2>
<div class="scroll">${htmlTable(seedTable(summary), 'seeds')}</div>
${crashes.length ? `<h2>Crashes</h2>\n<ul class="crashes">${crashes.map((c) => `<li>${escapeHtml(c)}</li>`).join('\n')}</ul>\n` : ''}<h2>Notes</h2>
<ul class="notes">${NOTES.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}</ul>
<footer>rlvr compare · ${loaded.length} runs · ${summary.algorithms.length} algorithms · ${charts.length} charts</footer>
</main>
</body>
</html>
`;
}

export const COMPARISON_FILES = { html: 'comparison.html', markdown: 'comparison.md' } as const;

/** Reads the runs and writes `<dir>/comparison.md` and `<dir>/comparison.html`, each atomically. */
export async function writeComparison(
  dir: string,
  runs: ReadonlyArray<ComparisonRun>,
  options: ComparisonReportOptions = {},
): Promise<{ htmlPath: string; mdPath: string; summaries: AlgorithmSummary[]; target: TargetAccuracy }> {
  const loaded = loadComparison(runs);
  const summary = summarizeComparison(loaded, options);
  const html = await comparisonHtml(loaded, options);
  const mdPath = join(dir, COMPARISON_FILES.markdown);
  const htmlPath = join(dir, COMPARISON_FILES.html);
  writeFileAtomic(mdPath, comparisonMarkdown(loaded, options));
  writeFileAtomic(htmlPath, html);
  return { htmlPath, mdPath, summaries: summary.algorithms, target: summary.target };
}
