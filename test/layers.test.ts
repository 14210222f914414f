/**
 * Layer rules, read from the import statements of every source file.
 *
 * The layer table in CONTRIBUTING.md ("Layers")
 * gives each top-level folder a "may import" column and says arrows only point downward
 * (a folder imports only the layers it builds on). ALLOWED below writes that column out;
 * where today's code needs a layer the column does not name, the entry says why.
 *
 * - every folder imports only itself, node built-ins and the layers in its ALLOWED entry
 *   (rewards/ and datasets/: no tfjs, nothing from src/ but tfjs-free engine files,
 *   rewards/ never datasets/ or trainers; rewards/ only mathjs and p-limit, datasets/ only hyparquet);
 * - nothing in src/, rewards/ or datasets/ imports scripts/ or test/;
 * - src/control/envs/ never reaches tfjs, not even through another file;
 * - the trainer files grpo.ts, ppo.ts and sft.ts do not import one another.
 *
 * Imports are found with ts.preProcessFile: static `import ... from`, `export ... from`,
 * `import type`, and `import('...')` / `require('...')` with a string literal.
 */
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** folder -> the layers it may import besides itself and node built-ins (CONTRIBUTING.md). */
const ALLOWED: Record<string, readonly string[]> = {
  // core: seeded RNG, atomic writes, config validation, safetensors; no engine, no tfjs.
  core: [],
  'engine/tfjs': ['tfjs', 'core'],
  // lm: the onnxruntime engine compiles lm's models (config, parameter specs, tokenizer,
  // sampling rules) into graphs and implements lm's Sampler interface; lm never imports it.
  'engine/onnx': ['core', 'lm', 'tfjs'],
  objectives: ['tfjs', 'core', 'engine/tfjs'],
  // report: control/train.ts and control/bench.ts write metrics, progress and plots.
  control: ['tfjs', 'core', 'engine/tfjs', 'objectives', 'report'],
  // objectives: lm/token-stats.ts is the per-token boundary and gathers its log-probs and
  // entropies with the shared math; objectives sits below lm and never imports it.
  lm: ['tfjs', 'core', 'engine/tfjs', 'objectives'],
  // report, datasets and rewards: the trainers log metrics, read prompt files and load the
  // user's reward functions through the reward contract.
  trainers: ['tfjs', 'core', 'engine/tfjs', 'engine/onnx', 'objectives', 'lm', 'report', 'rewards', 'datasets'],
  report: ['core'],
  rewards: ['core'],
  datasets: ['core', 'rewards'],
};
/** Folders whose npm packages are named in the layer table (others may use any dependency). */
const PACKAGES: Record<string, readonly string[]> = {
  core: ['zod'],
  'engine/tfjs': [],
  'engine/onnx': ['onnxruntime-node', 'protobufjs'],
  rewards: ['mathjs', 'p-limit'],
  datasets: ['hyparquet'],
};

type Edge = { from: string; spec: string; target: string; layer: string; kind: 'file' | 'package' };

function walk(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return walk(rel);
    return /\.[cm]?[jt]s$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [rel] : [];
  });
}

function resolveFile(from: string, spec: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => fs.existsSync(path.join(ROOT, c)) && fs.statSync(path.join(ROOT, c)).isFile()) ?? base;
}

/** The layer of a repo file: a folder under src/, or the top-level folder. */
function layerOfFile(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'src' && parts[1] === 'engine' && parts.length > 3) return `engine/${parts[2]}`;
  if (parts[0] === 'src') return parts.length > 2 ? parts[1]! : 'src';
  return parts[0]!;
}

function edgesOf(file: string, text = fs.readFileSync(path.join(ROOT, file), 'utf8')): Edge[] {
  return ts.preProcessFile(text, true, true).importedFiles.map(({ fileName: spec }): Edge => {
    const self = /^rlvr(\/rewards)?$/.exec(spec);
    if (spec.startsWith('.') || self) {
      const target = self ? (self[1] ? 'rewards/index.ts' : 'src/index.ts') : resolveFile(file, spec);
      return { from: file, spec, target, layer: layerOfFile(target), kind: 'file' };
    }
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
    const node = spec.startsWith('node:') || builtinModules.includes(name);
    const layer = spec.startsWith('@tensorflow/') ? 'tfjs' : node ? 'node' : name;
    return { from: file, spec, target: spec, layer, kind: 'package' };
  });
}

const tfjsMemo = new Map<string, boolean>();
/** Whether a repo file imports tfjs, directly or through other repo files. */
function reachesTfjs(file: string): boolean {
  if (!tfjsMemo.has(file)) {
    tfjsMemo.set(file, false); // a cycle adds nothing new
    const edges = fs.existsSync(path.join(ROOT, file)) ? edgesOf(file) : [];
    tfjsMemo.set(file, edges.some((e) => e.layer === 'tfjs' || (e.kind === 'file' && reachesTfjs(e.target))));
  }
  return tfjsMemo.get(file)!;
}

const sources = ['src', 'rewards', 'datasets'].flatMap(walk);
const edges = sources.flatMap((file) => edgesOf(file));
const show = (e: Edge) => `${e.from} -> ${e.target}`;

function allowed(folder: string, e: Edge): boolean {
  const rules = ALLOWED[folder]!;
  if (e.layer === folder || e.layer === 'node') return true;
  if (e.kind === 'package' && e.layer !== 'tfjs') return PACKAGES[folder]?.includes(e.layer) ?? true;
  return rules.includes(e.layer);
}

describe('layer rules (CONTRIBUTING.md, "Layers")', () => {
  it('the scanner sees static, re-export, type-only and dynamic imports', () => {
    const text = [
      "import * as tf from '@tensorflow/tfjs';",
      "export { x } from '../core/rng.ts';",
      "import type { T } from '../../rewards/types.ts';",
      "const m = await import('../lm/model.ts');",
      "const s = `import ${'a'} from 'not-an-import'`;",
    ].join('\n');
    expect(edgesOf('src/trainers/x.ts', text).map(show)).toEqual([
      'src/trainers/x.ts -> @tensorflow/tfjs',
      'src/trainers/x.ts -> src/core/rng.ts',
      'src/trainers/x.ts -> rewards/types.ts',
      'src/trainers/x.ts -> src/lm/model.ts',
    ]);
    expect(sources).toContain('src/trainers/grpo.ts');
    expect(reachesTfjs('src/engine/tfjs/backend.ts')).toBe(true);
    expect(layerOfFile('src/engine/onnx/graph.ts')).toBe('engine/onnx');
    expect(layerOfFile('src/core/rng.ts')).toBe('core');
  });

  for (const folder of Object.keys(ALLOWED)) {
    const dir = folder === 'rewards' || folder === 'datasets' ? `${folder}/` : `src/${folder}/`;
    if (folder.startsWith('engine/') && !fs.existsSync(path.join(ROOT, dir))) continue;
    it(`${dir} imports only itself, node built-ins and ${ALLOWED[folder]!.join(', ')}`, () => {
      const offenders = edges.filter((e) => e.from.startsWith(dir) && !allowed(folder, e)).map(show);
      expect(offenders, `${dir} may import: ${ALLOWED[folder]!.join(', ')}`).toEqual([]);
    });
  }

  it('nothing in src/, rewards/ or datasets/ imports scripts/ or test/', () => {
    const offenders = edges.filter((e) => e.layer === 'scripts' || e.layer === 'test').map(show);
    expect(offenders).toEqual([]);
  });

  it('src/core/, rewards/ and datasets/ never reach tfjs, not even through another file', () => {
    const offenders = edges
      .filter((e) => /^(src\/core|rewards|datasets)\//.test(e.from))
      .filter((e) => e.layer === 'tfjs' || (e.kind === 'file' && reachesTfjs(e.target)))
      .map(show);
    expect(offenders).toEqual([]);
  });

  it('src/control/envs/ never reaches tfjs ("an environment never knows about tfjs")', () => {
    const offenders = edges
      .filter((e) => e.from.startsWith('src/control/envs/'))
      .filter((e) => e.layer === 'tfjs' || (e.kind === 'file' && reachesTfjs(e.target)))
      .map(show);
    expect(offenders).toEqual([]);
  });

  it('the trainer files grpo.ts, ppo.ts and sft.ts do not import one another', () => {
    const trainers = ['grpo.ts', 'ppo.ts', 'sft.ts'].map((f) => `src/trainers/${f}`);
    const offenders = edges
      .filter((e) => trainers.includes(e.from) && trainers.includes(e.target) && e.from !== e.target)
      .map(show);
    expect(offenders, 'shared plumbing belongs in its own src/trainers file').toEqual([]);
  });
});
