/**
 * The HTML run report: one self-contained file (inline CSS and inline SVG charts; no
 * scripts, no external fetches, and a Content-Security-Policy that forbids them) with the
 * run's key figures, a chart per metric group, the resolved config and a table of sample
 * completions with their rewards.
 *
 * Written at the end of training (`writeRunReport`) or on demand from a run folder
 * (`reportFromMetricsFile`, used by `rlvr report`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic.ts';
import { escapeHtml, flattenConfig, formatDuration, formatNumber, formatValue } from './format.ts';
import { readMetrics, readSamples, RUN_FILES, type MetricRecord, type SampleRecord } from './metrics.ts';
import { lineChartSvg, type LineSeries } from './plot.ts';

export interface ChartSpec {
  title: string;
  /** Metric keys drawn as one line each against the step. */
  metricKeys: string[];
  yLabel: string;
  /** Optional band per line: metric key -> key holding its spread (drawn as value ± spread). */
  bands?: Record<string, string>;
}

/** A metrics line as read back: step plus any values. */
export type MetricsRow = Readonly<Record<string, number | string | null | undefined>> & { step: number };

export interface RunReportInput {
  title: string;
  config?: Readonly<Record<string, unknown>>;
  metrics: ReadonlyArray<MetricsRow>;
  /** Charts to draw; default `defaultCharts(metrics)` (every numeric key, grouped). */
  charts?: ReadonlyArray<ChartSpec>;
  samples?: ReadonlyArray<SampleRecord>;
  /** Key figures for the header; default `summarizeMetrics(metrics)`. */
  summary?: Readonly<Record<string, string | number>>;
  /** At most this many samples are shown, spread evenly over the run. Default 60. */
  maxSamples?: number;
  /** Completions and prompts longer than this many characters are cut. Default 4000. */
  maxTextChars?: number;
}

/** Last parts that say nothing without their namespace (`reward/mean` is labelled "reward mean"). */
const GENERIC_LEAVES = new Set(['mean', 'std', 'min', 'max', 'sum', 'count', 'value']);

const NAMESPACE_ORDER = ['reward', 'eval', 'rollout', 'train', 'time', 'throughput'];

function namespaceRank(key: string): number {
  const i = NAMESPACE_ORDER.indexOf(key.split('/')[0]!);
  return i === -1 ? NAMESPACE_ORDER.length + (key.includes('/') ? 0 : 1) : i;
}

/** Keys that hold at least one finite number, in first-appearance order. */
export function numericMetricKeys(metrics: ReadonlyArray<MetricsRow>): string[] {
  const seen = new Set<string>();
  for (const rec of metrics) {
    for (const [k, v] of Object.entries(rec)) {
      if (k !== 'step' && k !== 'time' && typeof v === 'number' && Number.isFinite(v)) seen.add(k);
    }
  }
  return [...seen];
}

/**
 * One chart per metric group, for any set of keys:
 * - `X/std` is drawn as a band around `X/mean` instead of a chart of its own;
 * - a two-part key (`train/kl`) gets its own chart (siblings differ in scale);
 * - deeper keys share a chart with their siblings (`train/clip_ratio/{low,high,region}`),
 *   except when the same last part appears under several middles (`reward/<fn>/mean`),
 *   where one chart compares that statistic across the middles.
 * Namespaces come in the order reward, eval, rollout, train, time, throughput, then others.
 */
export function defaultCharts(metrics: ReadonlyArray<MetricsRow>): ChartSpec[] {
  const all = numericMetricKeys(metrics);
  const present = new Set(all);
  const bands: Record<string, string> = {};
  for (const k of all) {
    if (k === 'mean' || k.endsWith('/mean')) {
      const std = `${k.slice(0, -'mean'.length)}std`;
      if (present.has(std)) bands[k] = std;
    }
  }
  const bandKeys = new Set(Object.values(bands));
  const keys = all.filter((k) => !bandKeys.has(k));

  const middlesPerLeaf = new Map<string, Set<string>>();
  for (const k of keys) {
    const parts = k.split('/');
    if (parts.length < 3) continue;
    const id = `${parts[0]}|${parts[parts.length - 1]}`;
    const set = middlesPerLeaf.get(id) ?? new Set<string>();
    set.add(parts.slice(1, -1).join('/'));
    middlesPerLeaf.set(id, set);
  }

  const groups = new Map<string, ChartSpec>();
  for (const k of keys) {
    const parts = k.split('/');
    let group: string;
    let yLabel: string;
    if (parts.length < 3) {
      group = k;
      const leaf = parts[parts.length - 1]!;
      yLabel = parts.length === 2 && GENERIC_LEAVES.has(leaf) ? `${parts[0]} ${leaf}` : leaf;
    } else {
      const ns = parts[0]!;
      const leaf = parts[parts.length - 1]!;
      if ((middlesPerLeaf.get(`${ns}|${leaf}`)?.size ?? 0) >= 2) {
        group = `${ns}/*/${leaf}`;
        yLabel = `${ns} ${leaf}`;
      } else {
        group = parts.slice(0, -1).join('/');
        yLabel = parts[parts.length - 2]!;
      }
    }
    let chart = groups.get(group);
    if (!chart) {
      chart = { title: group, metricKeys: [], yLabel };
      groups.set(group, chart);
    }
    chart.metricKeys.push(k);
    const b = bands[k];
    if (b) {
      chart.bands = { ...chart.bands, [k]: b };
      if (chart.metricKeys.length === 1) chart.title = `${group} ± ${b.split('/').pop()}`;
    }
  }
  return [...groups.values()]
    .map((c, i) => ({ c, i }))
    .sort((a, b) => namespaceRank(a.c.metricKeys[0]!) - namespaceRank(b.c.metricKeys[0]!) || a.i - b.i)
    .map(({ c }) => c);
}

function finiteSeries(metrics: ReadonlyArray<MetricsRow>, key: string): Array<{ step: number; value: number }> {
  const out: Array<{ step: number; value: number }> = [];
  for (const rec of metrics) {
    const v = rec[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push({ step: rec.step, value: v });
  }
  return out;
}

/**
 * Header figures from the metrics: step range, wall time, and for the headline metrics
 * present, the mean of their last 10 values (eval metrics: last and best).
 */
export function summarizeMetrics(metrics: ReadonlyArray<MetricsRow>): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (metrics.length === 0) return { records: 0 };
  const first = metrics[0]!;
  const last = metrics[metrics.length - 1]!;
  out.steps = first.step === last.step ? last.step : `${first.step}–${last.step}`;
  const t0 = Date.parse(String(first.time ?? ''));
  const t1 = Date.parse(String(last.time ?? ''));
  if (Number.isFinite(t0) && Number.isFinite(t1)) out['wall time'] = formatDuration((t1 - t0) / 1000);
  for (const key of ['reward/mean', 'rollout/ep_return', 'train/loss']) {
    const s = finiteSeries(metrics, key);
    if (s.length === 0) continue;
    const tail = s.slice(-10);
    out[`${key} (mean of last ${tail.length})`] = formatNumber(tail.reduce((a, p) => a + p.value, 0) / tail.length);
  }
  for (const [key, better] of [
    ['eval/accuracy', Math.max],
    ['eval/loss', Math.min],
  ] as const) {
    const s = finiteSeries(metrics, key);
    if (s.length === 0) continue;
    out[`${key} (last)`] = formatNumber(s[s.length - 1]!.value);
    const best = s.reduce((b, p) => (better(b.value, p.value) === p.value && p.value !== b.value ? p : b));
    out[`${key} (best)`] = `${formatNumber(best.value)} @ step ${best.step}`;
  }
  return out;
}

/** Gives each id in an SVG a prefix (and rewrites its references) so inline SVGs cannot clash. */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}${id}"`);
}

/**
 * Legend labels: the keys without the '/'-separated parts they all share at the start and
 * the end (`reward/correct/mean`, `reward/format/mean` -> `correct`, `format`).
 */
export function seriesLabels(keys: ReadonlyArray<string>): string[] {
  if (keys.length < 2) return [...keys];
  const parts = keys.map((k) => k.split('/'));
  const minLen = Math.min(...parts.map((p) => p.length));
  let head = 0;
  while (head < minLen - 1 && parts.every((p) => p[head] === parts[0]![head])) head++;
  let tail = 0;
  while (tail < minLen - 1 - head && parts.every((p) => p[p.length - 1 - tail] === parts[0]![parts[0]!.length - 1 - tail])) tail++;
  const labels = parts.map((p) => p.slice(head, p.length - tail).join('/'));
  return new Set(labels).size === labels.length && labels.every((l) => l !== '') ? labels : [...keys];
}

async function renderChart(chart: ChartSpec, metrics: ReadonlyArray<MetricsRow>, index: number, xDomain: [number, number] | undefined): Promise<string> {
  const series: LineSeries[] = [];
  const band: Array<number[] | null> = [];
  const labels = seriesLabels(chart.metricKeys);
  for (const [i, key] of chart.metricKeys.entries()) {
    const bandKey = chart.bands?.[key];
    const points: Array<[number, number]> = [];
    const spread: number[] = [];
    for (const rec of metrics) {
      const v = rec[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      points.push([rec.step, v]);
      const s = bandKey ? rec[bandKey] : undefined;
      spread.push(typeof s === 'number' && Number.isFinite(s) ? s : NaN);
    }
    if (points.length === 0) continue;
    series.push({ name: labels[i]!, points });
    band.push(bandKey ? spread : null);
  }
  const caption = `<figcaption>${escapeHtml(chart.title)}</figcaption>`;
  const keysAttr = escapeHtml(chart.metricKeys.join(' '));
  if (series.length === 0) {
    return `<figure class="chart empty" data-metrics="${keysAttr}">${caption}<p>No values logged for ${chart.metricKeys.map((k) => `<code>${escapeHtml(k)}</code>`).join(', ')}.</p></figure>`;
  }
  const svg = await lineChartSvg({ title: chart.title, xLabel: 'step', yLabel: chart.yLabel, series, band, xDomain, width: 500, height: 230 });
  return `<figure class="chart" data-metrics="${keysAttr}">${prefixSvgIds(svg, `c${index}-`)}</figure>`;
}

/** Picks at most `max` items spread evenly over the list (always the first and the last). */
function spreadPick<T>(items: ReadonlyArray<T>, max: number): T[] {
  if (items.length <= max) return [...items];
  if (max <= 1) return items.slice(-1);
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(items[Math.round((i * (items.length - 1)) / (max - 1))]!);
  return out;
}

function clip(text: string, max: number): string {
  return text.length <= max ? escapeHtml(text) : `${escapeHtml(text.slice(0, max))}<span class="cut">… (${text.length - max} more characters)</span>`;
}

function samplesTable(samples: ReadonlyArray<SampleRecord>, maxSamples: number, maxChars: number): string {
  if (samples.length === 0) return '<p class="muted">No samples were logged.</p>';
  const shown = spreadPick(samples, maxSamples);
  const fns: string[] = [];
  for (const s of shown) for (const k of Object.keys(s.rewards)) if (!fns.includes(k)) fns.push(k);
  const head = `<tr><th>step</th><th>prompt</th><th>completion</th>${fns.map((f) => `<th>${escapeHtml(f)}</th>`).join('')}</tr>`;
  const rows = shown.map((s) => {
    const cells = fns.map((f) => {
      const v = s.rewards[f];
      return typeof v === 'number' ? `<td class="num">${escapeHtml(formatNumber(v))}</td>` : '<td class="num muted" title="not applicable">–</td>';
    });
    return `<tr><td class="num">${s.step}</td><td class="prompt"><pre>${clip(s.prompt, maxChars)}</pre></td><td><pre>${clip(s.completion, maxChars)}</pre></td>${cells.join('')}</tr>`;
  });
  const note = shown.length < samples.length ? `<p class="muted">${shown.length} of ${samples.length} samples, spread over the run.</p>` : '';
  return `${note}<table class="samples"><thead>${head}</thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function configTable(config: Readonly<Record<string, unknown>> | undefined): string {
  if (!config || Object.keys(config).length === 0) return '<p class="muted">No config recorded.</p>';
  const rows = flattenConfig(config).map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(formatValue(v))}</td></tr>`);
  return `<table class="config"><tbody>${rows.join('')}</tbody></table>`;
}

/**
 * The start of a self-contained report page up to </head>: a Content-Security-Policy that
 * allows inline styles and data: images only (no script runs), the title and the styles.
 */
export function htmlHead(title: string, css: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
</head>`;
}

/** The page frame both HTML reports share (run report, comparison): colours, font, width, headings. */
export const REPORT_BASE_CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; background: #f6f8fa; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 48px; }
h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
`;

const CSS = `${REPORT_BASE_CSS}
h1 { font-size: 24px; margin: 0 0 14px; }
.summary { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 140px; }
.card .k { font-size: 12px; color: #59636e; }
.card .v { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figure.empty figcaption { font-weight: 600; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
table.config th { font-weight: normal; color: #59636e; font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
table.config td { font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
table.samples { width: 100%; table-layout: auto; }
table.samples thead th { background: #eef1f4; position: sticky; top: 0; }
table.samples pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12.5px/1.4 "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; }
table.samples td.prompt { width: 28%; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.muted { color: #8c959f; }
.cut { color: #8c959f; font-style: italic; }
footer { margin-top: 36px; font-size: 12px; color: #8c959f; }
`;

/** Renders the whole report as one HTML string. */
export async function renderRunReport(input: RunReportInput): Promise<string> {
  const charts = input.charts ?? defaultCharts(input.metrics);
  const summary = input.summary ?? summarizeMetrics(input.metrics);
  const figures: string[] = [];
  // One x range for every chart, so that the same step sits at the same place in each.
  const steps = input.metrics.map((r) => r.step);
  const xDomain: [number, number] | undefined = steps.length ? [Math.min(...steps), Math.max(...steps)] : undefined;
  for (let i = 0; i < charts.length; i++) figures.push(await renderChart(charts[i]!, input.metrics, i, xDomain));
  const cards = Object.entries(summary).map(
    ([k, v]) => `<div class="card"><div class="k">${escapeHtml(k)}</div><div class="v">${escapeHtml(typeof v === 'number' ? formatNumber(v) : v)}</div></div>`,
  );
  return `${htmlHead(input.title, CSS)}
<body>
<main>
<header>
<h1>${escapeHtml(input.title)}</h1>
<section class="summary">${cards.join('\n')}</section>
</header>
<h2>Metrics</h2>
${figures.length ? `<section class="charts">\n${figures.join('\n')}\n</section>` : '<p class="muted">No numeric metrics were logged.</p>'}
<h2>Config</h2>
${configTable(input.config)}
<h2>Sample completions</h2>
${samplesTable(input.samples ?? [], input.maxSamples ?? 60, input.maxTextChars ?? 4000)}
<footer>rlvr run report · ${input.metrics.length} metric records · ${charts.length} charts</footer>
</main>
</body>
</html>
`;
}

/** Renders the report and writes it atomically. */
export async function writeRunReport(path: string, input: RunReportInput): Promise<void> {
  writeFileAtomic(path, await renderRunReport(input));
}

export interface ReportFromFileOptions {
  title?: string;
  charts?: ReadonlyArray<ChartSpec>;
  maxSamples?: number;
}

export interface ReportFromFileResult {
  outPath: string;
  records: number;
  charts: number;
  samples: number;
}

/**
 * Builds the report of a run folder on demand. `metricsPath` is the run folder or its
 * metrics.jsonl; samples.jsonl and config.json beside it are used when present. The
 * report goes to `outPath`, default `<run folder>/report.html`. A live run's last,
 * half-written line is ignored.
 */
export async function reportFromMetricsFile(metricsPath: string, outPath?: string, options: ReportFromFileOptions = {}): Promise<ReportFromFileResult> {
  if (!existsSync(metricsPath)) throw new Error(`report: ${metricsPath} does not exist`);
  const isDir = statSync(metricsPath).isDirectory();
  const file = isDir ? join(metricsPath, RUN_FILES.metrics) : metricsPath;
  if (!existsSync(file)) throw new Error(`report: no ${RUN_FILES.metrics} in ${metricsPath}`);
  const dir = dirname(file);
  const metrics: MetricRecord[] = readMetrics(file, { allowTruncatedTail: true });
  const samplesPath = join(dir, RUN_FILES.samples);
  const samples = existsSync(samplesPath) ? readSamples(samplesPath, { allowTruncatedTail: true }) : [];
  const configPath = join(dir, RUN_FILES.config);
  let config: Record<string, unknown> | undefined;
  if (existsSync(configPath)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(configPath, 'utf8'));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a JSON object');
      config = parsed as Record<string, unknown>;
    } catch (e) {
      throw new Error(`report: ${configPath} is not a valid config: ${(e as Error).message}`);
    }
  }
  const charts = options.charts ?? defaultCharts(metrics);
  const out = outPath ?? join(dir, RUN_FILES.report);
  await writeRunReport(out, {
    title: options.title ?? `rlvr run: ${basename(resolve(dir))}`,
    config,
    metrics,
    charts,
    samples,
    maxSamples: options.maxSamples,
  });
  return { outPath: out, records: metrics.length, charts: charts.length, samples: samples.length };
}
