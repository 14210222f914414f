/**
 * `rlvr report <run-dir-or-metrics.jsonl> [--out file.html]`: builds the self-contained
 * HTML report of a run (finished or still running) from its metrics.jsonl, plus
 * samples.jsonl and config.json when they sit beside it.
 */
import type { Command } from 'commander';
import { reportFromMetricsFile } from '../../src/report/html.ts';

export function register(program: Command): void {
  program
    .command('report')
    .description('Write the HTML report of a run: charts of every logged metric, sample completions and the config.')
    .argument('<run>', 'run folder (holding metrics.jsonl) or a metrics .jsonl file')
    .option('-o, --out <file>', 'output HTML file (default: <run folder>/report.html)')
    .option('--title <text>', 'report title (default: "rlvr run: <folder name>")')
    .option('--max-samples <n>', 'show at most this many sample completions', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--max-samples must be a non-negative integer, got ${JSON.stringify(v)}`);
      return n;
    })
    .action(async (run: string, opts: { out?: string; title?: string; maxSamples?: number }) => {
      const result = await reportFromMetricsFile(run, opts.out, { title: opts.title, maxSamples: opts.maxSamples });
      process.stdout.write(`wrote ${result.outPath} (${result.records} metric records, ${result.charts} charts, ${result.samples} samples)\n`);
    });
}
