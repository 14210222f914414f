/**
 * JSONL run logs: `metrics.jsonl` (one line per log call, `{"step", "time", ...metrics}`)
 * and `samples.jsonl` (example completions with their rewards, for the run report).
 *
 * Each line is handed to the OS with one synchronous write, so a crash of the process loses
 * at most the line being written. Resuming from a checkpoint at step S keeps the lines with
 * step <= S and drops the later ones (they belong to the abandoned continuation); the
 * trimmed file replaces the old one atomically. A failed write (a full disk: ENOSPC) is an
 * error naming the file.
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDirs, writeFileAtomic } from '../core/atomic.ts';

/** File names inside a run folder. */
export const RUN_FILES = {
  metrics: 'metrics.jsonl',
  samples: 'samples.jsonl',
  config: 'config.json',
  report: 'report.html',
  /** Failed reward-function calls of an RL run, one JSON line each (src/trainers/reward-failures.ts). */
  rewardFailures: 'reward_failures.jsonl',
} as const;

/** One line of metrics.jsonl. Non-finite numbers are stored (and read back) as null. */
export interface MetricRecord {
  step: number;
  time: string;
  [key: string]: number | string | null;
}

/** One line of samples.jsonl: a completion and each reward function's value (null = not applicable). */
export interface SampleRecord {
  step: number;
  prompt: string;
  completion: string;
  rewards: Record<string, number | null>;
}

export interface OpenOptions {
  /** Keep lines with step <= this and drop later ones; without it the file starts empty. */
  resumeFromStep?: number;
}

export interface ReadOptions {
  /**
   * Ignore a malformed final line that lacks its newline (a line cut off by a crash, or
   * one being written while a live run is read). Off by default: every line must parse.
   */
  allowTruncatedTail?: boolean;
}

function checkStep(step: unknown, where: string): number {
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) {
    throw new Error(`${where}: "step" must be a non-negative integer, got ${JSON.stringify(step)}`);
  }
  return step;
}

/** Parses a JSONL file into objects that each carry an integer `step`. */
function readJsonl(path: string, options: ReadOptions): Array<Record<string, unknown> & { step: number }> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  const out: Array<Record<string, unknown> & { step: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${path}:${i + 1}`;
    const isUnterminatedTail = i === lines.length - 1 && !text.endsWith('\n');
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      if (isUnterminatedTail && options.allowTruncatedTail) break;
      throw new Error(`${where}: malformed line (not valid JSON: ${(e as Error).message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`${where}: malformed line (expected a JSON object, got ${line.slice(0, 40)})`);
    }
    const rec = value as Record<string, unknown>;
    checkStep(rec.step, where);
    out.push(rec as Record<string, unknown> & { step: number });
  }
  return out;
}

/** Reads metrics.jsonl; errors name the line number of a malformed line. */
export function readMetrics(path: string, options: ReadOptions = {}): MetricRecord[] {
  const records = readJsonl(path, options);
  records.forEach((rec) => {
    for (const [k, v] of Object.entries(rec)) {
      if (v !== null && typeof v !== 'number' && typeof v !== 'string') {
        throw new Error(`${path}: step ${rec.step}: metric "${k}" must be a number, string or null, got ${JSON.stringify(v)}`);
      }
    }
    if (typeof rec.time !== 'string') rec.time = '';
  });
  return records as MetricRecord[];
}

/** Reads samples.jsonl; errors name the line number of a malformed line. */
export function readSamples(path: string, options: ReadOptions = {}): SampleRecord[] {
  const records = readJsonl(path, options);
  return records.map((rec, i) => {
    const where = `${path}: sample ${i + 1} (step ${rec.step})`;
    if (typeof rec.prompt !== 'string') throw new Error(`${where}: "prompt" must be a string`);
    if (typeof rec.completion !== 'string') throw new Error(`${where}: "completion" must be a string`);
    const rewards = rec.rewards ?? {};
    if (rewards === null || typeof rewards !== 'object' || Array.isArray(rewards)) throw new Error(`${where}: "rewards" must be an object`);
    return { step: rec.step, prompt: rec.prompt, completion: rec.completion, rewards: rewards as Record<string, number | null> };
  });
}

/** Append-only JSONL file whose lines carry a step, with resume-by-truncation. */
class StepLog {
  private fd: number | null;
  private lastStep = -1;

  constructor(
    readonly path: string,
    options: OpenOptions,
  ) {
    makeDirs(dirname(path));
    const resume = options.resumeFromStep;
    if (resume !== undefined) {
      checkStep(resume, `open ${path} (resumeFromStep)`);
      if (existsSync(path)) {
        const lines = readFileSync(path, 'utf8').split('\n');
        const kept: string[] = [];
        lines.forEach((raw, i) => {
          const line = raw.trim();
          if (line === '') return;
          let step: unknown;
          try {
            step = (JSON.parse(line) as { step?: unknown }).step;
          } catch (e) {
            if (i === lines.length - 1) return; // cut off by a crash mid-write
            throw new Error(`${path}:${i + 1}: malformed line (not valid JSON: ${(e as Error).message}); cannot resume`);
          }
          if (checkStep(step, `${path}:${i + 1}`) <= resume) {
            kept.push(line);
            this.lastStep = Math.max(this.lastStep, step as number);
          }
        });
        writeFileAtomic(path, kept.map((l) => `${l}\n`).join(''));
      }
      this.fd = this.openFile('a');
    } else {
      this.fd = this.openFile('w');
    }
  }

  private openFile(flags: 'a' | 'w'): number {
    try {
      return openSync(this.path, flags);
    } catch (e) {
      throw new Error(`cannot open ${this.path} for writing: ${(e as Error).message}`);
    }
  }

  append(step: number, value: object): void {
    if (this.fd === null) throw new Error(`${this.path}: log after close()`);
    checkStep(step, `${this.path}: log`);
    if (step < this.lastStep) {
      throw new Error(`${this.path}: log step ${step} is before the last logged step ${this.lastStep}; steps must not go backwards`);
    }
    this.lastStep = step;
    const buf = Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      const full = (e as NodeJS.ErrnoException).code === 'ENOSPC' ? ' (the disk is full)' : '';
      throw new Error(`cannot write ${this.path}${full}: ${(e as Error).message}`);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Writes metrics.jsonl: one `{"step", "time", ...metrics}` line per `log` call. */
export class MetricsWriter {
  private constructor(private readonly file: StepLog) {}

  /** Starts a new metrics file, or trims an existing one for a resumed run. */
  static open(path: string, options: OpenOptions = {}): MetricsWriter {
    return new MetricsWriter(new StepLog(path, options));
  }

  get path(): string {
    return this.file.path;
  }

  /**
   * Appends one line. Steps must not decrease (several calls may share a step). Values are
   * numbers or strings; NaN and infinities are written as null; undefined values are left
   * out (a metric with nothing to report this step, e.g. no episode ended).
   */
  log(step: number, record: Readonly<Record<string, number | string | undefined>>): void {
    const line: Record<string, number | string | null> = { step, time: new Date().toISOString() };
    for (const [k, v] of Object.entries(record)) {
      if (k === '' || k === 'step' || k === 'time') throw new Error(`${this.file.path}: metric name ${JSON.stringify(k)} is reserved or empty`);
      if (v === undefined) continue;
      if (typeof v === 'number') line[k] = Number.isFinite(v) ? v : null;
      else if (typeof v === 'string') line[k] = v;
      else throw new Error(`${this.file.path}: metric "${k}" at step ${step} must be a number or string, got ${typeof v}`);
    }
    this.file.append(step, line);
  }

  close(): void {
    this.file.close();
  }
}

/** Writes samples.jsonl: example completions with their per-function rewards. */
export class SampleWriter {
  private constructor(private readonly file: StepLog) {}

  static open(path: string, options: OpenOptions = {}): SampleWriter {
    return new SampleWriter(new StepLog(path, options));
  }

  get path(): string {
    return this.file.path;
  }

  log(sample: SampleRecord): void {
    const rewards: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(sample.rewards)) rewards[k] = typeof v === 'number' && Number.isFinite(v) ? v : null;
    this.file.append(sample.step, { step: sample.step, prompt: sample.prompt, completion: sample.completion, rewards });
  }

  close(): void {
    this.file.close();
  }
}
