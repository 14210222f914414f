import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  aggregateSeeds,
  findSystemFonts,
  lineChartSpec,
  lineChartSvg,
  svgToPng,
  type ChartRow,
  type LineChartOptions,
} from '../../src/report/plot.ts';

function rowsOf(options: LineChartOptions): ChartRow[] {
  return (lineChartSpec(options) as unknown as { data: { values: ChartRow[] } }).data.values;
}

const base = { title: 't', xLabel: 'step', yLabel: 'y' };

describe('lineChartSpec', () => {
  it('turns series into rows, with bands as y ± spread and non-finite y left out', () => {
    const rows = rowsOf({
      ...base,
      series: [
        { name: 'a', points: [[0, 1], [1, Number.NaN], [2, 3]] },
        { name: 'b', points: [[0, 5]] },
      ],
      band: [[0.5, 9, -1], null],
    });
    expect(rows).toEqual([
      { x: 0, y: 1, series: 'a', lo: 0.5, hi: 1.5 },
      { x: 2, y: 3, series: 'a', lo: 2, hi: 4 },
      { x: 0, y: 5, series: 'b' },
    ]);
  });

  it('averages long series down to maxPoints buckets', () => {
    const points = Array.from({ length: 1000 }, (_, i) => [i, i * i] as [number, number]);
    const rows = rowsOf({ ...base, series: [{ name: 'a', points }], maxPoints: 100 });
    expect(rows).toHaveLength(100);
    // Bucket k holds points 10k .. 10k+9: mean x = 10k + 4.5, mean y = mean of squares.
    for (const k of [0, 37, 99]) {
      let sq = 0;
      for (let i = 10 * k; i < 10 * k + 10; i++) sq += i * i;
      expect(rows[k]!.x).toBeCloseTo(10 * k + 4.5, 10);
      expect(rows[k]!.y).toBeCloseTo(sq / 10, 8);
    }
  });

  it('rejects inconsistent input with the chart and series named', () => {
    const one = [{ name: 'a', points: [[0, 1]] as Array<[number, number]> }];
    expect(() => lineChartSpec({ ...base, series: [] })).toThrow(/lineChartSvg\("t"\): no series given/);
    expect(() => lineChartSpec({ ...base, series: one, band: [] })).toThrow(/band has 0 entries but there are 1 series/);
    expect(() => lineChartSpec({ ...base, series: one, band: [[1, 2]] })).toThrow(/band for series "a" has 2 values but the series has 1 points/);
    expect(() => lineChartSpec({ ...base, series: [...one, ...one] })).toThrow(/two series are named "a"/);
    expect(() => lineChartSpec({ ...base, series: [{ name: 'a', points: [[Infinity, 1]] }] })).toThrow(/series "a" point 0 has a non-finite x/);
    expect(() => lineChartSpec({ ...base, series: [{ name: 'a', points: [[0, Number.NaN]] }] })).toThrow(/no finite points to plot/);
    expect(() => lineChartSpec({ ...base, series: one, xDomain: [5, 1] })).toThrow(/xDomain must be \[min, max\]/);
  });
});

describe('lineChartSvg', () => {
  it('renders an SVG with escaped title, axis titles, ticks from the data and a legend', async () => {
    const svg = await lineChartSvg({
      title: 'Reward <mean> & "std"',
      xLabel: 'step',
      yLabel: 'reward',
      series: [
        { name: 'ppo', points: [[0, 0], [50, 0.5], [100, 1]] },
        { name: 'reinforce', points: [[0, 0], [50, 0.25], [100, 0.5]] },
      ],
      band: [[0.1, 0.1, 0.1], null],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('Reward &lt;mean&gt; &amp; &quot;std&quot;');
    expect(svg).not.toContain('<mean>');
    for (const text of ['>step<', '>reward<', '>ppo<', '>reinforce<']) expect(svg).toContain(text);
    // The y axis spans the band (-0.1 .. 1.1), so 0 and 1 are ticks and 2 is not.
    const yAxis = svg.slice(svg.indexOf('aria-label="Y-axis'));
    const labelGroup = /<g class="mark-text role-axis-label"[^>]*>(.*?)<\/g>/.exec(yAxis)?.[1] ?? '';
    const yTicks = [...labelGroup.matchAll(/>([^<>]+)<\/text>/g)].map((t) => t[1]);
    expect(yTicks).toContain('0');
    expect(yTicks).toContain('1');
    expect(yTicks).not.toContain('2');
    expect(yTicks.every((t) => Number(t) >= -0.1 && Number(t) <= 1.1)).toBe(true);
    // One line per series and one band area.
    expect(svg.match(/aria-roledescription="line mark"/g)).toHaveLength(2);
    expect(svg.match(/aria-roledescription="area mark"/g)).toHaveLength(1);
    expect(svg).not.toMatch(/(href|src)="https?:/);
  });

  it('draws no legend for a single series', async () => {
    const svg = await lineChartSvg({ ...base, series: [{ name: 'only-series', points: [[0, 1], [1, 2]] }] });
    expect(svg).not.toContain('role-legend');
    expect(svg).not.toContain('>only-series<');
  });
});

describe('aggregateSeeds', () => {
  it('gives the mean and population std per x', () => {
    const { points, spread } = aggregateSeeds([
      [[0, 1], [10, 2]],
      [[0, 3], [10, 6]],
    ]);
    expect(points).toEqual([[0, 2], [10, 4]]);
    expect(spread).toEqual([1, 2]);
  });

  it('requires matching x values', () => {
    expect(() => aggregateSeeds([])).toThrow(/no runs/);
    expect(() => aggregateSeeds([[[0, 1]], [[1, 1]]])).toThrow(/run 1 point 0 is at x=1 but run 0 is at x=0/);
    expect(() => aggregateSeeds([[[0, 1]], []])).toThrow(/run 1 has 0 points but run 0 has 1/);
  });
});

function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

describe('svgToPng', () => {
  const shapes = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect x="10" y="10" width="50" height="20" fill="#336"/></svg>';
  const withText = (family: string): string =>
    `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect x="10" y="10" width="50" height="20" fill="#336"/><text x="65" y="28" font-family="${family}" font-size="16">Ag</text></svg>`;

  it('writes a PNG at the requested scale', () => {
    const png = svgToPng(shapes, { scale: 2 });
    expect([...png.slice(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(pngSize(png)).toEqual({ width: 240, height: 80 });
    expect(pngSize(svgToPng(shapes, { scale: 1 }))).toEqual({ width: 120, height: 40 });
    expect(() => svgToPng(shapes, { scale: 0 })).toThrow(/scale must be > 0/);
  });

  it('draws text with the system fonts, or says that none is installed', () => {
    const fonts = findSystemFonts(1);
    if (fonts.length === 0) {
      expect(() => svgToPng(withText('DejaVu Sans'))).toThrow(/no font is available .*fonts-dejavu-core/);
      return;
    }
    const blank = svgToPng(shapes);
    // Text in a family that does not exist still renders through the fallback font.
    for (const family of ['DejaVu Sans, Helvetica, sans-serif', 'NoSuchFontFamily']) {
      const png = svgToPng(withText(family));
      expect(Buffer.from(png).equals(Buffer.from(blank))).toBe(false);
    }
  });

  it('refuses text without any font, and uses fonts given as files', () => {
    expect(() => svgToPng(withText('DejaVu Sans'), { loadSystemFonts: false })).toThrow(/no font is available \(looked in no system folders/);
    expect(svgToPng(shapes, { loadSystemFonts: false }).length).toBeGreaterThan(0); // no text, no font needed
    const fonts = findSystemFonts(1);
    if (fonts.length > 0) {
      const blank = svgToPng(shapes, { loadSystemFonts: false });
      const png = svgToPng(withText('DejaVu Sans'), { loadSystemFonts: false, fontFiles: fonts });
      expect(Buffer.from(png).equals(Buffer.from(blank))).toBe(false);
    }
  });

  it('finds font files in nested folders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlvr-fonts-'));
    expect(findSystemFonts(1, [dir])).toEqual([]);
    mkdirSync(join(dir, 'truetype', 'x'), { recursive: true });
    writeFileSync(join(dir, 'truetype', 'x', 'Some.TTF'), '');
    writeFileSync(join(dir, 'readme.txt'), '');
    expect(findSystemFonts(5, [dir, join(dir, 'missing')])).toEqual([join(dir, 'truetype', 'x', 'Some.TTF')]);
  });
});
