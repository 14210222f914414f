import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  defineConfig,
  describeType,
  didYouMean,
  flagOverrides,
  loadConfigFile,
  mergeConfig,
  parseConfig,
  parseSetOverrides,
  type ConfigOf,
} from '../../src/core/config.ts';

/** An example trainer config: every field documented, with its default and range. */
const ExampleConfig = defineConfig(
  z.object({
    learningRate: z.number().gt(0).lte(1).default(1e-5).describe('Adam step size'),
    groupSize: z.number().int().min(2).default(8).describe('completions sampled per prompt (K)'),
    lossMode: z.enum(['token', 'sequence']).default('token').describe('how per-token losses are averaged'),
    model: z.string().min(1).describe('path of the model folder'),
    optimizer: z
      .object({
        beta1: z.number().min(0).max(1).default(0.9).describe('first-moment decay'),
        clipGradNorm: z.number().positive().nullable().default(1).describe('max global grad norm; null disables'),
      })
      .prefault({}),
    rewardWeights: z.array(z.number()).default([1]).describe('one weight per reward function'),
    bf16: z.boolean().default(false).describe('not used on CPU'),
  }),
);
type Example = ConfigOf<typeof ExampleConfig>;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'rlvr-config-'));
}

describe('parseConfig', () => {
  it('fills every documented default', () => {
    const cfg: Example = ExampleConfig.parse({ model: 'runs/tiny' });
    expect(cfg).toEqual({
      learningRate: 1e-5,
      groupSize: 8,
      lossMode: 'token',
      model: 'runs/tiny',
      optimizer: { beta1: 0.9, clipGradNorm: 1 },
      rewardWeights: [1],
      bf16: false,
    });
  });

  it('names the field, the allowed range and the bad value', () => {
    const e = errorOf(() => ExampleConfig.parse({ model: 'm', learningRate: -3 }, { source: 'grpo.json' }));
    expect(e.message).toBe('Invalid config (grpo.json): "learningRate" must be > 0 and <= 1, got -3');
    expect(e.problems).toHaveLength(1);
  });

  it('reports every problem at once, with nested paths and list indices', () => {
    const e = errorOf(() =>
      ExampleConfig.parse({ groupSize: 2.5, lossMode: 'tokn', optimizer: { beta1: 2 }, rewardWeights: [1, 'x'], bf16: 'yes' }, { source: 'a.json' }),
    );
    expect(e.problems).toEqual(
      expect.arrayContaining([
        '"groupSize" must be an integer >= 2, got 2.5',
        '"lossMode" must be one of "token", "sequence", got "tokn" (did you mean "token"?)',
        '"model" is required (a non-empty string)',
        '"optimizer.beta1" must be >= 0 and <= 1, got 2',
        '"rewardWeights[1]" must be a number, got "x"',
        '"bf16" must be true or false, got "yes"',
      ]),
    );
    expect(e.problems).toHaveLength(6);
    expect(e.message.split('\n')[0]).toBe('Invalid config (a.json):');
  });

  it('rejects unknown keys at any depth, suggesting near misses', () => {
    const e = errorOf(() => ExampleConfig.parse({ model: 'm', lerningRate: 0.1, optimizer: { beta: 0.5 }, colour: 'red' }));
    expect(e.problems[0]).toMatch(/^unknown key "lerningRate" \(did you mean "learningRate"\?\); allowed keys: learningRate, groupSize/);
    expect(e.problems[1]).toMatch(/^unknown key "beta" in "optimizer" \(did you mean "beta1"\?\)/);
    expect(e.problems[2]).toMatch(/^unknown key "colour"; allowed keys:/);
    expect(e.problems[2]).not.toContain('did you mean');
  });

  it('accepts null only where the schema allows it', () => {
    expect(ExampleConfig.parse({ model: 'm', optimizer: { clipGradNorm: null } }).optimizer.clipGradNorm).toBeNull();
    const e = errorOf(() => ExampleConfig.parse({ model: null }));
    expect(e.problems).toEqual(['"model" must be a non-empty string, got null']);
  });

  it('rejects input that is not an object', () => {
    expect(errorOf(() => parseConfig(ExampleConfig.schema, [1, 2])).message).toContain('expected an object of settings');
  });

  it('leaves loose objects open', () => {
    const schema = z.object({ extra: z.looseObject({ a: z.number().default(1) }).prefault({}) });
    expect(parseConfig(schema, { extra: { b: 2 } })).toEqual({ extra: { a: 1, b: 2 } });
  });
});

describe('describeType and didYouMean', () => {
  it('describes ranges, unions and lists', () => {
    expect(describeType(z.number().int().gte(1).lt(10))).toBe('an integer >= 1 and < 10');
    expect(describeType(z.union([z.literal('auto'), z.number().positive()]))).toBe('"auto" or a number > 0');
    expect(describeType(z.array(z.string()).min(1))).toBe('a list of strings (at least 1 item)');
    expect(describeType(z.number().nullable().default(null))).toBe('a number or null');
  });

  it('suggests only close candidates, case-insensitively', () => {
    expect(didYouMean('learningrate', ['learningRate', 'groupSize'])).toBe('learningRate');
    expect(didYouMean('grupSize', ['learningRate', 'groupSize'])).toBe('groupSize');
    expect(didYouMean('temperature', ['learningRate', 'groupSize'])).toBeNull();
  });
});

describe('config files and overrides', () => {
  it('loads a JSON file and names the file and position of a syntax error', () => {
    const dir = tempDir();
    const good = join(dir, 'good.json');
    writeFileSync(good, '{"model": "m", "learningRate": 0.001}');
    expect(loadConfigFile(good)).toEqual({ model: 'm', learningRate: 0.001 });

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{\n  "model": "m",\n  "learningRate": 0.001,\n}\n');
    const e = errorOf(() => loadConfigFile(bad));
    expect(e.message).toContain('Invalid config (bad.json)');
    expect(e.message).toContain(`${bad} is not valid JSON at line 4, column 1`);

    const arr = join(dir, 'arr.json');
    writeFileSync(arr, '[1]');
    expect(errorOf(() => loadConfigFile(arr)).message).toContain('must hold a JSON object');
    expect(errorOf(() => loadConfigFile(join(dir, 'missing.json'))).message).toContain('cannot read config file');
  });

  it('coerces --set values to the schema type at each key', () => {
    const o = parseSetOverrides(ExampleConfig.schema, [
      'learningRate=3e-6',
      'bf16=true',
      'lossMode=sequence',
      'model=123',
      'optimizer.clipGradNorm=null',
      'rewardWeights=[0.5, 2]',
    ]);
    expect(o).toEqual({
      learningRate: 3e-6,
      bf16: true,
      lossMode: 'sequence',
      model: '123', // a string field keeps the text as typed
      optimizer: { clipGradNorm: null },
      rewardWeights: [0.5, 2],
    });
  });

  it('rejects malformed and unknown --set keys', () => {
    const e = errorOf(() => parseSetOverrides(ExampleConfig.schema, ['learningrate=1', 'optimizer.bta1=0.5', 'model.sub=1', 'noequals']));
    expect(e.source).toBe('--set');
    expect(e.problems).toEqual([
      expect.stringMatching(/^unknown key "learningrate" \(did you mean "learningRate"\?\)/),
      expect.stringMatching(/^unknown key "bta1" in "optimizer" \(did you mean "beta1"\?\)/),
      '"model" has no sub-keys, so "model.sub" is not a setting',
      '"noequals" must look like key=value',
    ]);
  });

  it('skips flags that were not given and coerces string flags', () => {
    expect(flagOverrides(ExampleConfig.schema, { groupSize: '4', lossMode: undefined, 'optimizer.beta1': 0.5 })).toEqual({
      groupSize: 4,
      optimizer: { beta1: 0.5 },
    });
  });

  it('deep-merges objects and replaces arrays', () => {
    expect(mergeConfig({ a: { b: 1, c: [1, 2] }, d: 1 }, undefined, { a: { c: [3] }, d: undefined }, { a: { e: 2 } })).toEqual({
      a: { b: 1, c: [3], e: 2 },
      d: 1,
    });
  });

  it('resolves defaults < values < file < --set < flags, naming the origin of a bad value', () => {
    const dir = tempDir();
    const file = join(dir, 'run.json');
    writeFileSync(file, JSON.stringify({ model: 'from-file', groupSize: 4, optimizer: { beta1: 0.8 } }));
    const cfg = ExampleConfig.resolve({
      values: { model: 'from-values', learningRate: 0.5 },
      file,
      set: ['groupSize=6', 'optimizer.clipGradNorm=2'],
      flags: { groupSize: '16', bf16: undefined },
    });
    expect(cfg).toMatchObject({
      model: 'from-file',
      learningRate: 0.5,
      groupSize: 16,
      optimizer: { beta1: 0.8, clipGradNorm: 2 },
      bf16: false,
    });

    const e = errorOf(() => ExampleConfig.resolve({ file, set: ['learningRate=abc', 'optimizer.beta1=1.5'] }));
    expect(e.source).toBe('run.json + --set');
    expect(e.problems).toEqual([
      '"learningRate" must be a number > 0 and <= 1, got "abc" (from --set)',
      '"optimizer.beta1" must be >= 0 and <= 1, got 1.5 (from --set)',
    ]);
  });

  it('reports a missing required field from defaults()', () => {
    expect(errorOf(() => ExampleConfig.defaults()).problems).toEqual(['"model" is required (a non-empty string)']);
    const Full = defineConfig(z.object({ seed: z.number().int().default(0) }));
    expect(Full.defaults()).toEqual({ seed: 0 });
  });

  it('describes every leaf setting with its type, default and doc', () => {
    const lines = ExampleConfig.describe().split('\n');
    expect(lines).toHaveLength(8);
    expect(lines[0]).toMatch(/^learningRate\s+a number > 0 and <= 1\s+default 0\.00001\s+Adam step size$/);
    expect(lines.find((l) => l.startsWith('optimizer.clipGradNorm'))).toMatch(/a number > 0 or null\s+default 1\s+max global grad norm/);
    expect(lines.find((l) => l.startsWith('model '))).toMatch(/required\s+path of the model folder$/);
  });
});
