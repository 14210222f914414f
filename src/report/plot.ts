/**
 * Line charts as SVG, rendered server-side by vega-lite -> vega with no canvas (the
 * 'none' renderer plus `toSVG()`), and SVG -> PNG through resvg.
 *
 * Text in the SVG names a font list that starts with DejaVu Sans (Debian's
 * fonts-dejavu-core) and falls back to Helvetica/Arial/sans-serif, so the same SVG reads
 * well in a browser anywhere. resvg has no built-in font: `svgToPng` loads the system's
 * fonts and refuses, with a clear error, to rasterise text when there are none.
 */
import { readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export const CHART_FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

export interface LineSeries {
  name: string;
  /** [x, y] pairs; points with a non-finite y are left out (the line joins its neighbours). */
  points: ReadonlyArray<readonly [number, number]>;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ReadonlyArray<LineSeries>;
  /**
   * Optional spread per series, drawn as a shaded band y ± spread (e.g. the std across
   * seeds around their mean): `band[i][j]` belongs to `series[i].points[j]`. An entry may
   * be null/undefined for a series without a band.
   */
  band?: ReadonlyArray<ReadonlyArray<number> | null | undefined>;
  /**
   * Optional limits of the band, per series and point ([lo, hi], same layout as `band`):
   * the band is cut to them, e.g. to the range a return can take or to the seeds' min/max,
   * so that mean + std does not draw past values no run reached.
   */
  bandBounds?: ReadonlyArray<ReadonlyArray<readonly [number, number]> | null | undefined>;
  /** Fixed x range (e.g. the whole run's steps, so that charts line up); default the data's. */
  xDomain?: readonly [number, number];
  /** Plot area size in px (axes, title and legend come on top). Defaults 560 x 260. */
  width?: number;
  height?: number;
  /**
   * Longer series are reduced to this many points by averaging consecutive buckets, which
   * keeps reports of long runs small. Default 1500.
   */
  maxPoints?: number;
}

/** Axis tick labels chosen by the axis's largest magnitude (120k, 0.25, 3e-4), with 0 as "0". */
function tickAxis(maxAbs: number): { labelExpr: string } {
  const fmt = maxAbs >= 1e5 ? '~s' : maxAbs > 0 && maxAbs < 1e-2 ? '~e' : '~r';
  return { labelExpr: `datum.value == 0 ? '0' : format(datum.value, '${fmt}')` };
}

/** One row of a line chart's data (`data.values` of the spec): a point, with its band where it has one. */
export interface ChartRow {
  x: number;
  y: number;
  series: string;
  lo?: number;
  hi?: number;
}

/** Averages consecutive buckets of rows down to at most `max` rows. */
function downsample(rows: ChartRow[], max: number): ChartRow[] {
  if (rows.length <= max) return rows;
  const out: ChartRow[] = [];
  for (let b = 0; b < max; b++) {
    const start = Math.floor((b * rows.length) / max);
    const end = Math.floor(((b + 1) * rows.length) / max);
    const bucket = rows.slice(start, end);
    const mean = (f: (r: ChartRow) => number | undefined): number | undefined => {
      let s = 0;
      for (const r of bucket) {
        const v = f(r);
        if (v === undefined) return undefined;
        s += v;
      }
      return s / bucket.length;
    };
    const row: ChartRow = { x: mean((r) => r.x)!, y: mean((r) => r.y)!, series: bucket[0]!.series };
    const lo = mean((r) => r.lo);
    const hi = mean((r) => r.hi);
    if (lo !== undefined && hi !== undefined) {
      row.lo = lo;
      row.hi = hi;
    }
    out.push(row);
  }
  return out;
}

/** Builds the vega-lite spec for a line chart (exported for inspection and tests). */
export function lineChartSpec(options: LineChartOptions): TopLevelSpec {
  const { title, xLabel, yLabel, series, band } = options;
  if (series.length === 0) throw new Error(`lineChartSvg("${title}"): no series given`);
  if (options.xDomain && !(options.xDomain[0] <= options.xDomain[1])) {
    throw new Error(`lineChartSvg("${title}"): xDomain must be [min, max] with min <= max, got [${options.xDomain.join(', ')}]`);
  }
  if (band && band.length !== series.length) {
    throw new Error(`lineChartSvg("${title}"): band has ${band.length} entries but there are ${series.length} series`);
  }
  options.bandBounds?.forEach((b, i) => {
    const n = series[i]?.points.length;
    if (b && b.length !== n) throw new Error(`lineChartSvg("${title}"): bandBounds[${i}] has ${b.length} entries but series ${i} has ${n ?? 'no'} points`);
  });
  const names = new Set<string>();
  const values: ChartRow[] = [];
  let hasBand = false;
  let maxLen = 0;
  series.forEach((s, i) => {
    if (names.has(s.name)) throw new Error(`lineChartSvg("${title}"): two series are named "${s.name}"`);
    names.add(s.name);
    const spread = band?.[i];
    if (spread && spread.length !== s.points.length) {
      throw new Error(`lineChartSvg("${title}"): band for series "${s.name}" has ${spread.length} values but the series has ${s.points.length} points`);
    }
    const rows: ChartRow[] = [];
    s.points.forEach(([x, y], j) => {
      if (!Number.isFinite(x)) throw new Error(`lineChartSvg("${title}"): series "${s.name}" point ${j} has a non-finite x (${x})`);
      if (!Number.isFinite(y)) return;
      const row: ChartRow = { x, y, series: s.name };
      const d = spread?.[j];
      if (d !== undefined && Number.isFinite(d)) {
        const [bLo, bHi] = options.bandBounds?.[i]?.[j] ?? [-Infinity, Infinity];
        row.lo = Math.max(y - Math.abs(d), Math.min(bLo, y));
        row.hi = Math.min(y + Math.abs(d), Math.max(bHi, y));
        hasBand = true;
      }
      rows.push(row);
    });
    const reduced = downsample(rows, options.maxPoints ?? 1500);
    maxLen = Math.max(maxLen, reduced.length);
    values.push(...reduced);
  });
  if (values.length === 0) throw new Error(`lineChartSvg("${title}"): no finite points to plot`);
  const maxAbs = (f: (r: ChartRow) => number[]): number => values.reduce((m, r) => Math.max(m, ...f(r).map(Math.abs)), 0);
  const multi = series.length > 1;
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    sort: series.map((s) => s.name),
    legend: multi ? { orient: 'bottom' as const, symbolType: 'stroke', labelLimit: 240, columns: Math.min(series.length, 4) } : null,
  };
  const layers: Array<Record<string, unknown>> = [];
  if (hasBand) {
    layers.push({
      mark: { type: 'area', opacity: 0.22, clip: true },
      transform: [{ filter: 'isValid(datum.lo)' }],
      encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color },
    });
  }
  layers.push({
    // Point markers on short series, where a line alone could be a single invisible dot.
    // Clipped to the plot area: with a fixed xDomain, points outside it must not spill over the axes.
    mark: { type: 'line', strokeWidth: 1.8, clip: true, point: maxLen <= 40 ? { size: 18 } : false },
    encoding: {
      y: { field: 'y', type: 'quantitative', title: yLabel, scale: { zero: false }, axis: tickAxis(maxAbs((r) => [r.y, r.lo ?? 0, r.hi ?? 0])) },
      color,
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: options.width ?? 560,
    height: options.height ?? 260,
    background: 'white',
    padding: 8,
    data: { values: values as unknown as Array<Record<string, unknown>> },
    encoding: { x: { field: 'x', type: 'quantitative', title: xLabel, scale: options.xDomain ? { domain: [...options.xDomain], nice: false } : { zero: false, nice: false }, axis: tickAxis(maxAbs((r) => [r.x])) } },
    layer: layers,
    config: {
      font: CHART_FONT,
      title: { fontSize: 14, anchor: 'start' },
      axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
      legend: { labelFontSize: 11, symbolOpacity: 1, symbolStrokeWidth: 2.5 },
    },
  } as unknown as TopLevelSpec;
}

/** Renders a line chart to an SVG string (no canvas, no network). */
export async function lineChartSvg(options: LineChartOptions): Promise<string> {
  // Warnings about our own fixed spec would only clutter training logs; errors still print.
  const spec = compile(lineChartSpec(options), { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Mean and population std per x across seeds, for `band` (x values must match across runs). */
export function aggregateSeeds(runs: ReadonlyArray<ReadonlyArray<readonly [number, number]>>): { points: Array<[number, number]>; spread: number[] } {
  if (runs.length === 0) throw new Error('aggregateSeeds: no runs given');
  const n = runs[0]!.length;
  runs.forEach((r, i) => {
    if (r.length !== n) throw new Error(`aggregateSeeds: run ${i} has ${r.length} points but run 0 has ${n}`);
  });
  const points: Array<[number, number]> = [];
  const spread: number[] = [];
  for (let j = 0; j < n; j++) {
    const x = runs[0]![j]![0];
    let sum = 0;
    runs.forEach((r, i) => {
      if (r[j]![0] !== x) throw new Error(`aggregateSeeds: run ${i} point ${j} is at x=${r[j]![0]} but run 0 is at x=${x}`);
      sum += r[j]![1];
    });
    const mean = sum / runs.length;
    let sq = 0;
    for (const r of runs) sq += (r[j]![1] - mean) ** 2;
    points.push([x, mean]);
    spread.push(Math.sqrt(sq / runs.length));
  }
  return { points, spread };
}

const FONT_DIRS = [
  '/usr/share/fonts',
  '/usr/local/share/fonts',
  join(homedir(), '.fonts'),
  join(homedir(), '.local/share/fonts'),
  '/System/Library/Fonts',
  '/Library/Fonts',
  'C:\\Windows\\Fonts',
];

/** Up to `limit` font files (.ttf/.otf/.ttc) under the usual system font folders. */
export function findSystemFonts(limit = 1, dirs: readonly string[] = FONT_DIRS): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (found.length >= limit || depth > 6) return;
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      if (found.length >= limit) return;
      const p = join(dir, e);
      if (/\.(ttf|otf|ttc)$/i.test(e)) found.push(p);
      else {
        try {
          if (statSync(p).isDirectory()) walk(p, depth + 1);
        } catch {
          // unreadable entry: skip it
        }
      }
    }
  };
  for (const d of dirs) walk(d, 0);
  return found;
}

export interface PngOptions {
  /** Pixel density: 2 renders at twice the SVG's size (crisp on high-DPI screens). Default 2. */
  scale?: number;
  /** Extra font files to load (used before the system's). */
  fontFiles?: string[];
  /** Load the system's fonts (default true). */
  loadSystemFonts?: boolean;
  background?: string;
}

/**
 * Rasterises an SVG to PNG bytes with resvg. Throws if the SVG has text but no font can be
 * found (resvg would silently drop every label): install one (Debian: `fonts-dejavu-core`)
 * or pass `fontFiles`.
 */
export function svgToPng(svg: string, options: PngOptions = {}): Uint8Array {
  const scale = options.scale ?? 2;
  if (!(scale > 0 && scale <= 16)) throw new Error(`svgToPng: scale must be > 0 and <= 16, got ${scale}`);
  const system = options.loadSystemFonts ?? true;
  const fontFiles = options.fontFiles ?? [];
  if (/<text[\s>]/.test(svg) && fontFiles.length === 0 && (!system || findSystemFonts(1).length === 0)) {
    throw new Error(
      `svgToPng: the SVG has text but no font is available (looked in ${system ? FONT_DIRS.join(', ') : 'no system folders: loadSystemFonts is false'}). ` +
        'Install a font package (Debian/Ubuntu: apt-get install fonts-dejavu-core) or pass fontFiles.',
    );
  }
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: options.background ?? 'white',
    font: { loadSystemFonts: system, fontFiles, sansSerifFamily: 'DejaVu Sans' },
    logLevel: 'off',
  });
  return new Uint8Array(resvg.render().asPng());
}
