import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { printRunHeader, TrainingProgress, type ProgressStream } from '../../src/report/progress.ts';

/** A stream that records what is written, posing as a terminal or not. */
function captureStream(isTTY: boolean): { stream: ProgressStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number };
  stream.isTTY = isTTY;
  stream.columns = 160;
  return { stream, text: () => chunks.join('') };
}

/** A clock the test moves by hand. */
function fakeClock(): { now: () => number; set: (ms: number) => void } {
  let t = 0;
  return { now: () => t, set: (ms) => (t = ms) };
}

describe('TrainingProgress rate and ETA', () => {
  it('computes steps/s from the updates and the ETA from the steps left', () => {
    const clock = fakeClock();
    const p = new TrainingProgress({ total: 10, quiet: true, now: clock.now });
    p.start();
    expect(p.stepsPerSecond).toBeNull();
    expect(p.etaSeconds).toBeNull();
    clock.set(1000);
    p.update(1);
    clock.set(2000);
    p.update(2);
    expect(p.stepsPerSecond).toBeCloseTo(1, 12);
    expect(p.etaSeconds).toBeCloseTo(8, 12);
    clock.set(2500);
    p.update(4);
    expect(p.stepsPerSecond).toBeCloseTo(4 / 2.5, 12);
    expect(p.etaSeconds).toBeCloseTo(6 / (4 / 2.5), 12);
  });

  it('follows the recent speed, not the average since the start', () => {
    const clock = fakeClock();
    const p = new TrainingProgress({ total: 1000, quiet: true, now: clock.now });
    p.start();
    let t = 0;
    for (let s = 1; s <= 30; s++) {
      t += 1000; // 1 step/s
      clock.set(t);
      p.update(s);
    }
    for (let s = 31; s <= 60; s++) {
      t += 500; // then 2 steps/s
      clock.set(t);
      p.update(s);
    }
    expect(p.stepsPerSecond).toBeCloseTo(2, 12);
  });

  it('a resumed run measures from its start step', () => {
    const clock = fakeClock();
    const p = new TrainingProgress({ total: 100, quiet: true, now: clock.now });
    p.start(50);
    clock.set(5000);
    p.update(60);
    expect(p.stepsPerSecond).toBeCloseTo(2, 12);
    expect(p.etaSeconds).toBeCloseTo(20, 12);
  });

  it('validates its options and call order', () => {
    expect(() => new TrainingProgress({ total: 0 })).toThrow(/total must be a positive integer, got 0/);
    expect(() => new TrainingProgress({ total: 5, logEverySeconds: -1 })).toThrow(/logEverySeconds must be >= 0/);
    expect(() => new TrainingProgress({ total: 5, quiet: true }).update(1)).toThrow(/update\(\) before start\(\)/);
  });
});

describe('TrainingProgress output', () => {
  it('prints periodic plain lines when the stream is not a terminal', () => {
    const clock = fakeClock();
    const out = captureStream(false);
    const p = new TrainingProgress({ total: 100, label: 'grpo', stream: out.stream, logEverySeconds: 30, now: clock.now });
    p.start();
    for (let s = 1; s <= 100; s++) {
      clock.set(s * 1000);
      p.update(s, { 'reward/mean': s / 100, 'train/loss': 0.5, 'eval/accuracy': s === 20 ? 0.25 : undefined });
    }
    p.stop();
    const printed = out.text().trimEnd().split('\n');
    // First update, then every 30 s (steps 31, 61, 91), then the last step.
    expect(printed.map((l) => /step (\d+)\//.exec(l)?.[1])).toEqual(['1', '31', '61', '91', '100']);
    expect(printed[1]).toBe('[grpo] step 31/100 31% | reward 0.31 | acc 0.25 | loss 0.5 | 1 steps/s | ETA 1m 09s');
    expect(printed[4]).toContain('100/100 100%');
    expect(out.text()).not.toContain('\x1b['); // no terminal control codes in logs
  });

  it('prints the final line on stop when the last update was not printed', () => {
    const clock = fakeClock();
    const out = captureStream(false);
    const p = new TrainingProgress({ total: 100, stream: out.stream, logEverySeconds: 30, now: clock.now });
    p.start();
    clock.set(1000);
    p.update(1);
    clock.set(2000);
    p.update(2);
    p.stop();
    p.stop(); // idempotent
    const printed = out.text().trimEnd().split('\n');
    expect(printed).toHaveLength(2);
    expect(printed[1]).toMatch(/^step 2\/100 2% \| 1 steps\/s \| ETA 1m 38s$/);
  });

  it('draws a bar with the live fields on a terminal', () => {
    const clock = fakeClock();
    const out = captureStream(true);
    const p = new TrainingProgress({ total: 4, label: 'ppo', stream: out.stream, now: clock.now });
    p.start();
    clock.set(500);
    p.update(1, { 'rollout/ep_return': 21.5 });
    p.log('eval: accuracy 0.5');
    clock.set(1000);
    p.update(2, { 'rollout/ep_return': 40 });
    p.stop();
    const text = out.text();
    expect(text).toContain('ppo ');
    expect(text).toMatch(/[█░]{24}/);
    expect(text).toContain('eval: accuracy 0.5\n\x1b7'); // the bar's saved cursor moves below the message
    expect(text).toContain('2/4 50% | return 40 | 2 steps/s | ETA 1s');
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('\x1b[?7l'); // terminal line wrapping is never switched off
    expect(text).not.toContain('\x1b[?25l'); // nor the cursor hidden
  });

  it('prints nothing when quiet', () => {
    const out = captureStream(false);
    const p = new TrainingProgress({ total: 3, stream: out.stream, quiet: true });
    p.start();
    p.update(3, { 'reward/mean': 1 });
    p.log('hello');
    p.stop();
    expect(out.text()).toBe('');
    expect(p.statusText()).toMatch(/^3\/3 100% \| reward 1 \|/);
  });
});

describe('printRunHeader', () => {
  it('prints the sorted, flattened config with engine and model size, and returns it', () => {
    const out = captureStream(false);
    const text = printRunHeader({
      title: 'GRPO arithmetic',
      config: { seed: 1, learningRate: 1e-5, optimizer: { beta1: 0.9 }, model: 'runs/tiny model', rewards: ['correct', 'format'] },
      engine: { backend: 'wasm', threads: 1 },
      modelInfo: { name: 'gpt2', layers: 4, parameters: 831_488 },
      stream: out.stream,
    });
    expect(out.text()).toBe(text);
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^== GRPO arithmetic =+$/),
      'engine  backend=wasm  threads=1',
      'model   gpt2  layers=4  831K parameters',
      'config  learningRate=1e-5  model="runs/tiny model"  optimizer.beta1=0.9',
      '        rewards=["correct","format"]  seed=1', // the whole line would pass 100 columns
      '',
    ]);
  });

  it('wraps long configs and stays silent when quiet', () => {
    const out = captureStream(false);
    const config = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`key${String(i).padStart(2, '0')}`, i]));
    const text = printRunHeader({ title: 't', config, width: 60, quiet: true, stream: out.stream });
    expect(out.text()).toBe('');
    const cfgLines = text.split('\n').slice(1, -1);
    expect(cfgLines.length).toBeGreaterThan(3);
    for (const l of cfgLines) expect(l.length).toBeLessThanOrEqual(60);
    expect(cfgLines[0]!.startsWith('config  key00=0  key01=1')).toBe(true);
    expect(cfgLines[1]!.startsWith('        key')).toBe(true);
    // Every pair appears exactly once, in sorted order.
    const pairs = cfgLines.join(' ').replace('config', '').trim().split(/\s+/);
    expect(pairs).toEqual(Object.keys(config).map((k, i) => `${k}=${i}`));
  });
});
