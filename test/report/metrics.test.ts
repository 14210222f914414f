import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsWriter, SampleWriter, readMetrics, readSamples } from '../../src/report/metrics.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'rlvr-metrics-'));
}

function lines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('MetricsWriter', () => {
  it('writes one JSON line per log call, visible before close', () => {
    const path = join(tempDir(), 'run', 'metrics.jsonl');
    const w = MetricsWriter.open(path);
    const before = Date.now();
    w.log(1, { 'reward/mean': 0.25, phase: 'warmup' });
    // Written synchronously: a reader sees the line while the writer is still open.
    const first = lines(path);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ step: 1, 'reward/mean': 0.25, phase: 'warmup' });
    const t = Date.parse(first[0]!.time as string);
    expect(t).toBeGreaterThanOrEqual(before - 1000);
    expect(Object.keys(first[0]!).slice(0, 2)).toEqual(['step', 'time']);

    w.log(2, { 'train/loss': Number.NaN, 'train/kl': Infinity, 'train/entropy': 1.5, 'rollout/ep_return': undefined });
    w.close();
    const all = lines(path);
    expect(all[1]).toMatchObject({ step: 2, 'train/loss': null, 'train/kl': null, 'train/entropy': 1.5 });
    expect(Object.keys(all[1]!)).toEqual(['step', 'time', 'train/loss', 'train/kl', 'train/entropy']);
  });

  it('rejects bad steps, reserved names and use after close', () => {
    const w = MetricsWriter.open(join(tempDir(), 'metrics.jsonl'));
    expect(() => w.log(-1, {})).toThrow(/"step" must be a non-negative integer, got -1/);
    expect(() => w.log(1.5, {})).toThrow(/non-negative integer, got 1.5/);
    expect(() => w.log(1, { step: 3 })).toThrow(/metric name "step" is reserved/);
    expect(() => w.log(1, { time: 'x' })).toThrow(/metric name "time" is reserved/);
    w.log(5, { a: 1 });
    w.log(5, { b: 2 }); // the same step may be logged twice (train and eval)
    expect(() => w.log(4, { a: 1 })).toThrow(/step 4 is before the last logged step 5/);
    // Values must be numbers or strings, even when the caller bypasses the types.
    expect(() => w.log(6, { a: true as unknown as number })).toThrow(/metric "a" at step 6 must be a number or string, got boolean/);
    w.close();
    expect(() => w.log(7, { a: 1 })).toThrow(/log after close/);
  });

  it('starts a fresh file when not resuming', () => {
    const path = join(tempDir(), 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"time":"","a":1}\n');
    MetricsWriter.open(path).close();
    expect(readFileSync(path, 'utf8')).toBe('');
  });

  it('on resume keeps steps <= resumeFromStep, drops later ones, and appends after them', () => {
    const dir = tempDir();
    const path = join(dir, 'metrics.jsonl');
    const w = MetricsWriter.open(path);
    for (let s = 1; s <= 10; s++) w.log(s, { x: s * 10 });
    w.close();
    // A crash mid-write leaves an unterminated last line; resuming must drop it.
    appendFileSync(path, '{"step":11,"x":1');

    const r = MetricsWriter.open(path, { resumeFromStep: 6 });
    expect(lines(path).map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => r.log(5, { x: 0 })).toThrow(/before the last logged step 6/);
    r.log(7, { x: 700 });
    r.close();
    const after = readMetrics(path);
    expect(after.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(after.map((m) => m.x)).toEqual([10, 20, 30, 40, 50, 60, 700]);
    // The trimmed file replaced the old one through a rename: no temporary file is left.
    expect(readdirSync(dir)).toEqual(['metrics.jsonl']);
  });

  it('resuming with no file yet starts one', () => {
    const path = join(tempDir(), 'metrics.jsonl');
    const w = MetricsWriter.open(path, { resumeFromStep: 3 });
    w.log(4, { a: 1 });
    w.close();
    expect(readMetrics(path).map((m) => m.step)).toEqual([4]);
  });

  it('refuses to resume over a malformed line in the middle', () => {
    const path = join(tempDir(), 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"time":""}\nnot json\n{"step":2,"time":""}\n');
    expect(() => MetricsWriter.open(path, { resumeFromStep: 1 })).toThrow(/metrics\.jsonl:2: malformed line/);
  });
});

describe('readMetrics', () => {
  it('names the line number of a malformed line', () => {
    const path = join(tempDir(), 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"time":"t","a":1}\n\n{"step":2,"time":"t","a":2}\n{"step":3,"a":}\n');
    expect(() => readMetrics(path)).toThrow(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: malformed line`));
  });

  it('checks step and value types', () => {
    const dir = tempDir();
    const a = join(dir, 'a.jsonl');
    writeFileSync(a, '{"step":1}\n{"step":"2"}\n');
    expect(() => readMetrics(a)).toThrow(/a\.jsonl:2: "step" must be a non-negative integer, got "2"/);
    const b = join(dir, 'b.jsonl');
    writeFileSync(b, '[1,2]\n');
    expect(() => readMetrics(b)).toThrow(/b\.jsonl:1: malformed line \(expected a JSON object/);
    const c = join(dir, 'c.jsonl');
    writeFileSync(c, '{"step":1,"time":"t","m":{"x":1}}\n');
    expect(() => readMetrics(c)).toThrow(/step 1: metric "m" must be a number, string or null/);
    expect(() => readMetrics(join(dir, 'missing.jsonl'))).toThrow(/cannot read .*missing\.jsonl/);
  });

  it('ignores a cut-off last line only when asked', () => {
    const path = join(tempDir(), 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"time":"t","a":1}\n{"step":2,"ti');
    expect(() => readMetrics(path)).toThrow(/:2: malformed line/);
    expect(readMetrics(path, { allowTruncatedTail: true })).toEqual([{ step: 1, time: 't', a: 1 }]);
  });
});

describe('SampleWriter / readSamples', () => {
  it('round-trips samples, storing non-finite rewards as null', () => {
    const path = join(tempDir(), 'samples.jsonl');
    const w = SampleWriter.open(path);
    w.log({ step: 3, prompt: 'What is 2+2?', completion: '<answer>4</answer>', rewards: { correct: 1, format: null } });
    w.log({ step: 4, prompt: 'p', completion: 'c\nwith "quotes"', rewards: { correct: Number.NaN } });
    w.close();
    expect(readSamples(path)).toEqual([
      { step: 3, prompt: 'What is 2+2?', completion: '<answer>4</answer>', rewards: { correct: 1, format: null } },
      { step: 4, prompt: 'p', completion: 'c\nwith "quotes"', rewards: { correct: null } },
    ]);
  });

  it('names the bad field of a malformed sample', () => {
    const path = join(tempDir(), 'samples.jsonl');
    writeFileSync(path, '{"step":1,"prompt":"p","completion":"c","rewards":{}}\n{"step":2,"prompt":"p","rewards":{}}\n');
    expect(() => readSamples(path)).toThrow(/sample 2 \(step 2\): "completion" must be a string/);
  });
});
