/**
 * Console progress for training loops: a live cli-progress bar on a terminal, periodic
 * plain log lines when stdout is not a terminal (CI logs, `> file`), or nothing (`quiet`).
 * Both show step/total, the latest value of a few headline metrics, steps/s over the
 * recent updates and the ETA. `printRunHeader` prints what a run is about to do.
 */
import cliProgress from 'cli-progress';
import { flattenConfig, formatCount, formatDuration, formatNumber, formatValue } from './format.ts';
import { METRIC_NAMES } from './metric-names.ts';

/** Output target; `isTTY` decides between the live bar and plain lines. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgressField {
  /** Metric key looked up in the records passed to `update`. */
  key: string;
  /** Short label shown before the value. */
  label: string;
}

/** Shown when present in the updates: reward, eval accuracy, loss, episode return. */
export const DEFAULT_PROGRESS_FIELDS: ReadonlyArray<ProgressField> = [
  { key: METRIC_NAMES.reward.mean, label: 'reward' },
  { key: METRIC_NAMES.eval.accuracy, label: 'acc' },
  { key: METRIC_NAMES.train.loss, label: 'loss' },
  { key: METRIC_NAMES.rollout.epReturn, label: 'return' },
];

export interface ProgressOptions {
  /** Total number of steps (> 0). */
  total: number;
  /** Name before the bar, e.g. "grpo". */
  label?: string;
  fields?: ReadonlyArray<ProgressField>;
  /** Print nothing at all. */
  quiet?: boolean;
  /** Default process.stdout. */
  stream?: ProgressStream;
  /** Plain-line mode: seconds between lines (the first and last update always print). Default 30. */
  logEverySeconds?: number;
  /** Clock in milliseconds (tests pass a fake one). Default Date.now. */
  now?: () => number;
}

/** How many recent updates the steps/s estimate averages over. */
const RATE_WINDOW = 20;

export class TrainingProgress {
  private readonly total: number;
  private readonly label: string;
  private readonly fields: ReadonlyArray<ProgressField>;
  private readonly quiet: boolean;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly logEveryMs: number;
  private readonly now: () => number;
  private readonly latest = new Map<string, number | string>();
  private readonly history: Array<{ t: number; step: number }> = [];
  private bar: cliProgress.SingleBar | null = null;
  private step = 0;
  private running = false;
  private lastPrintT = -Infinity;
  private lastPrintedStep = -1;

  constructor(options: ProgressOptions) {
    if (!(Number.isInteger(options.total) && options.total > 0)) {
      throw new Error(`TrainingProgress: total must be a positive integer, got ${options.total}`);
    }
    const every = options.logEverySeconds ?? 30;
    if (!(every >= 0)) throw new Error(`TrainingProgress: logEverySeconds must be >= 0, got ${every}`);
    this.total = options.total;
    this.label = options.label ?? '';
    this.fields = options.fields ?? DEFAULT_PROGRESS_FIELDS;
    this.quiet = options.quiet ?? false;
    this.stream = options.stream ?? process.stdout;
    this.tty = this.stream.isTTY === true;
    this.logEveryMs = every * 1000;
    this.now = options.now ?? Date.now;
  }

  /** Starts the clock (and the bar on a terminal) at `step` (a resumed run starts past 0). */
  start(step = 0): void {
    this.step = step;
    this.running = true;
    this.history.length = 0;
    this.history.push({ t: this.now(), step });
    this.lastPrintT = -Infinity;
    if (this.quiet || !this.tty) return;
    this.bar = new cliProgress.SingleBar({
      stream: this.stream,
      format: (options) => `${this.label ? `${this.label} ` : ''}${cliProgress.Format.BarFormat(Math.min(1, this.step / this.total), options)} ${this.statusText()}`,
      barsize: 24,
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
      hideCursor: false,
      clearOnComplete: false,
      stopOnComplete: false,
      // Leave the terminal's modes alone, so an interrupted run cannot leave it altered:
      // no SIGINT handler (it would keep Ctrl-C from ending the run), line wrapping left on
      // (the bar trims its line to the terminal width instead).
      gracefulExit: false,
      linewrap: true,
    });
    this.bar.start(this.total, step);
  }

  /** Records that `step` is done, with this step's metrics (fields keep their last value). */
  update(step: number, metrics: Readonly<Record<string, number | string | null | undefined>> = {}): void {
    if (!this.running) throw new Error('TrainingProgress: update() before start()');
    this.step = step;
    for (const f of this.fields) {
      const v = metrics[f.key];
      if (typeof v === 'number' || typeof v === 'string') this.latest.set(f.key, v);
    }
    this.history.push({ t: this.now(), step });
    if (this.history.length > RATE_WINDOW) this.history.shift();
    if (this.quiet) return;
    if (this.bar) {
      this.bar.update(step);
      return;
    }
    const t = this.now();
    if (t - this.lastPrintT >= this.logEveryMs || step >= this.total) this.printLine(t);
  }

  /** Prints a message on its own line without garbling the bar. */
  log(message: string): void {
    if (this.quiet) return;
    if (this.bar) {
      // Clear the bar's line, print the message, and save the cursor again (ESC 7): the bar
      // restores the saved position when it stops, which must now be the line below.
      this.stream.write(`\r\x1b[2K${message}\n\x1b7`);
      this.bar.render();
    } else {
      this.stream.write(`${message}\n`);
    }
  }

  /** Stops the bar (or prints the final plain line if the last update was not printed). */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    if (this.bar) {
      this.bar.update(this.step);
      this.bar.stop();
      this.bar = null;
    } else if (!this.quiet && this.lastPrintedStep !== this.step) {
      this.printLine(this.now());
    }
  }

  /** Steps per second over the recent updates, or null before two time points exist. */
  get stepsPerSecond(): number | null {
    const first = this.history[0];
    const last = this.history[this.history.length - 1];
    if (!first || !last || last.t <= first.t) return null;
    return (last.step - first.step) / ((last.t - first.t) / 1000);
  }

  /** Seconds left at the current rate, or null when unknown. */
  get etaSeconds(): number | null {
    const rate = this.stepsPerSecond;
    if (rate === null || rate <= 0) return null;
    return Math.max(0, this.total - this.step) / rate;
  }

  /** `120/1000 12% | reward 0.534 | loss 0.0123 | 2.31 steps/s | ETA 6m 21s` */
  statusText(): string {
    const pct = Math.floor((100 * Math.min(this.step, this.total)) / this.total);
    const parts = [`${this.step}/${this.total} ${pct}%`];
    for (const f of this.fields) {
      const v = this.latest.get(f.key);
      if (v !== undefined) parts.push(`${f.label} ${typeof v === 'number' ? formatNumber(v) : v}`);
    }
    const rate = this.stepsPerSecond;
    const eta = this.etaSeconds;
    parts.push(rate === null ? '– steps/s' : `${formatNumber(rate, 3)} steps/s`);
    parts.push(`ETA ${eta === null ? '–' : formatDuration(eta)}`);
    return parts.join(' | ');
  }

  private printLine(t: number): void {
    this.stream.write(`${this.label ? `[${this.label}] ` : ''}step ${this.statusText()}\n`);
    this.lastPrintT = t;
    this.lastPrintedStep = this.step;
  }
}

export interface RunHeaderInfo {
  title: string;
  config?: Readonly<Record<string, unknown>>;
  /** Backend description: a string or fields such as { backend: 'wasm', threads: 1 }. */
  engine?: string | Readonly<Record<string, string | number | boolean>>;
  /** Model description; `name` is shown bare and `parameters` as a count ("830K parameters"). */
  modelInfo?: Readonly<Record<string, string | number | boolean>>;
  stream?: NodeJS.WritableStream;
  quiet?: boolean;
  /** Wrap config lines at this many columns. Default 100. */
  width?: number;
}

function describeFields(info: Readonly<Record<string, string | number | boolean>>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(info)) {
    if (k === 'name') parts.unshift(String(v));
    else if (k === 'parameters' && typeof v === 'number') parts.push(`${formatCount(v)} parameters`);
    else parts.push(`${k}=${formatValue(v)}`);
  }
  return parts.join('  ');
}

/**
 * Prints (unless quiet) and returns the run header: title, engine, model size and the
 * resolved config as sorted `key=value` pairs wrapped to the width.
 */
export function printRunHeader(info: RunHeaderInfo): string {
  const width = info.width ?? 100;
  const lines = [`== ${info.title} ${'='.repeat(Math.max(2, Math.min(width, 72) - info.title.length - 4))}`];
  const indent = ' '.repeat(8);
  if (info.engine !== undefined) lines.push(`engine  ${typeof info.engine === 'string' ? info.engine : describeFields(info.engine)}`);
  if (info.modelInfo) lines.push(`model   ${describeFields(info.modelInfo)}`);
  if (info.config) {
    const pairs = flattenConfig(info.config).map(([k, v]) => `${k}=${formatValue(v)}`);
    let line = 'config  ';
    let empty = true;
    for (const p of pairs) {
      if (!empty && line.length + 2 + p.length > width) {
        lines.push(line);
        line = indent;
        empty = true;
      }
      line += empty ? p : `  ${p}`;
      empty = false;
    }
    if (!empty) lines.push(line);
  }
  const text = `${lines.join('\n')}\n`;
  if (!info.quiet) (info.stream ?? process.stdout).write(text);
  return text;
}
