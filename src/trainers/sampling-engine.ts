/**
 * Which engine samples, and which computes SFT's gradients: `engine: 'onnxruntime' |
 * 'tfjs' | 'auto'` in every trainer's config (`--engine` on the command line). The
 * onnxruntime sampler follows the policy's weights after each optimizer step
 * (`src/engine/onnx`); SFT's forward and backward run on onnxruntime's training graph with
 * the AdamW update on tfjs (where the checkpoint's optimizer state lives); GRPO and PPO
 * train on tfjs. 'auto' picks onnxruntime when onnxruntime-node loads (measured faster
 * for both: scripts/bench-sampler.ts, scripts/bench-train.ts), else tfjs, and says why in
 * the run header.
 */
import { onnxSampler, type EngineSampler } from '../engine/onnx/sampler.ts';
import { OrtTrainer } from '../engine/onnx/trainer.ts';
import { ortAvailable, loadOrt } from '../engine/onnx/runtime.ts';
import type { CausalLM } from '../lm/model.ts';
import { tfjsSampler } from '../lm/sampler.ts';
import type { DeviceChoice, EngineChoice } from './sft-config.ts';


/** A sampler on the chosen engine, with a line for the run header. Dispose it when the run ends. */
export async function openSampler(model: CausalLM, engine: EngineChoice, device: DeviceChoice = 'cpu'): Promise<EngineSampler> {
  checkDevice(engine, device);
  if (engine === 'tfjs') return tfjsEngineSampler(model, 'tfjs');
  if (engine === 'auto' && device === 'cpu' && !(await ortAvailable())) {
    const reason = await loadOrt().then(
      () => '',
      (e: Error) => e.message,
    );
    return tfjsEngineSampler(model, `tfjs (auto: ${reason})`);
  }
  return onnxSampler(model, { device });
}

/** `device: 'cuda'` is onnxruntime's; with the tfjs engine it would be silently ignored. */
function checkDevice(engine: EngineChoice, device: DeviceChoice): void {
  if (device === 'cuda' && engine === 'tfjs') {
    throw new Error('"device" cuda runs onnxruntime on the GPU, and "engine" tfjs uses no onnxruntime: set engine to onnxruntime or auto (tfjs picks its own backend with --backend)');
  }
}

function tfjsEngineSampler(model: CausalLM, description: string): EngineSampler {
  return { ...tfjsSampler(model), description, syncStats: () => ({ syncs: 0, seconds: 0 }), dispose: async () => {} };
}

/** SFT's gradient engine: an `OrtTrainer` on onnxruntime, or null for tfjs autodiff. */
export async function openTrainer(model: CausalLM, engine: EngineChoice, device: DeviceChoice = 'cpu'): Promise<{ trainer: OrtTrainer | null; description: string }> {
  checkDevice(engine, device);
  if (engine === 'tfjs') return { trainer: null, description: 'tfjs' };
  if (engine === 'auto' && device === 'cpu' && !(await ortAvailable())) return { trainer: null, description: 'tfjs (auto: onnxruntime-node did not load)' };
  return { trainer: await OrtTrainer.create(model, { device }), description: `onnxruntime${device === 'cuda' ? ' (CUDA)' : ''} forward + backward, AdamW on tfjs` };
}
