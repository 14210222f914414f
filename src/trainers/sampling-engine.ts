/**
 * Which engine samples: `engine: 'onnxruntime' | 'tfjs' | 'auto'` in every trainer's config
 * (`--engine` on the command line). Training runs on tfjs either way; the onnxruntime
 * sampler follows the policy's weights after each optimizer step (`src/engine/onnx`).
 * 'auto' picks onnxruntime when onnxruntime-node loads, else tfjs, and says why in the
 * run header.
 */
import { onnxSampler, type EngineSampler } from '../engine/onnx/sampler.ts';
import { ortAvailable, loadOrt } from '../engine/onnx/runtime.ts';
import type { CausalLM } from '../lm/model.ts';
import { tfjsSampler } from '../lm/sampler.ts';
import type { EngineChoice } from './sft-config.ts';


/** A sampler on the chosen engine, with a line for the run header. Dispose it when the run ends. */
export async function openSampler(model: CausalLM, engine: EngineChoice): Promise<EngineSampler> {
  if (engine === 'tfjs') return tfjsEngineSampler(model, 'tfjs');
  if (engine === 'auto' && !(await ortAvailable())) {
    const reason = await loadOrt().then(
      () => '',
      (e: Error) => e.message,
    );
    return tfjsEngineSampler(model, `tfjs (auto: ${reason})`);
  }
  return onnxSampler(model);
}

function tfjsEngineSampler(model: CausalLM, description: string): EngineSampler {
  return { ...tfjsSampler(model), description, syncStats: () => ({ syncs: 0, seconds: 0 }), dispose: async () => {} };
}
