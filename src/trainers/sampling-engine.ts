/**
 * Which engine samples and which computes the gradients: `engine: 'onnxruntime' | 'tfjs' |
 * 'auto'` in every trainer's config (`--engine` on the command line). The onnxruntime
 * sampler follows the policy's weights after each optimizer step (`src/engine/onnx`). On
 * onnxruntime, SFT's forward and backward run on its training graph, and GRPO's and PPO's
 * policy, reference and critic statistics and gradients on its forward and training graphs
 * (`token-engine.ts`); the AdamW update stays on tfjs, where the checkpoint's optimizer
 * state lives. 'auto' picks onnxruntime when onnxruntime-node loads (measured faster for
 * all of them: scripts/bench-sampler.ts, scripts/bench-train.ts), else tfjs, and says why
 * in the run header.
 */
import { onnxSampler, type EngineSampler } from '../engine/onnx/sampler.ts';
import { OrtTrainer } from '../engine/onnx/trainer.ts';
import { ortAvailable, loadOrt } from '../engine/onnx/runtime.ts';
import type { CausalLM } from '../lm/model.ts';
import type { ValueModel } from '../lm/token-stats.ts';
import { type TokenEngine, ortCritic, ortPolicy, tfjsCritic, tfjsPolicy } from './token-engine.ts';
import { tfjsSampler } from '../lm/sampler.ts';
import type { DeviceChoice, EngineChoice } from './sft-config.ts';


/** A sampler on the chosen engine, with a line for the run header. Dispose it when the run ends. */
export async function openSampler(model: CausalLM, engine: EngineChoice, device: DeviceChoice = 'cpu'): Promise<EngineSampler> {
  const onTfjs = await tfjsInstead(engine, device);
  return onTfjs !== null ? tfjsEngineSampler(model, onTfjs) : onnxSampler(model, { device });
}

/**
 * Whether the choice lands on tfjs: null for onnxruntime, else the header line ('tfjs', or
 * why `auto` fell back). `device: 'cuda'` is onnxruntime's; with the tfjs engine it would be
 * silently ignored, so it is refused.
 */
async function tfjsInstead(engine: EngineChoice, device: DeviceChoice): Promise<string | null> {
  if (device === 'cuda' && engine === 'tfjs') {
    throw new Error('"device" cuda runs onnxruntime on the GPU, and "engine" tfjs uses no onnxruntime: set engine to onnxruntime or auto (tfjs picks its own backend with --backend)');
  }
  if (engine === 'tfjs') return 'tfjs';
  if (engine === 'auto' && device === 'cpu' && !(await ortAvailable())) {
    const reason = await loadOrt().then(
      () => '',
      (e: Error) => e.message,
    );
    return `tfjs (auto: ${reason})`;
  }
  return null;
}

function tfjsEngineSampler(model: CausalLM, description: string): EngineSampler {
  return { ...tfjsSampler(model), description, syncStats: () => ({ syncs: 0, seconds: 0 }), dispose: async () => {} };
}

/** SFT's gradient engine: an `OrtTrainer` on onnxruntime, or null for tfjs autodiff. */
export async function openTrainer(model: CausalLM, engine: EngineChoice, device: DeviceChoice = 'cpu'): Promise<{ trainer: OrtTrainer | null; description: string }> {
  const onTfjs = await tfjsInstead(engine, device);
  if (onTfjs !== null) return { trainer: null, description: onTfjs };
  return { trainer: await OrtTrainer.create(model.config, { device }), description: `onnxruntime${device === 'cuda' ? ' (CUDA)' : ''} forward + backward, AdamW on tfjs` };
}

/** The engines of an RL run's updates: the policy's, the reference's and the critic's (PPO). */
export interface RlEngines {
  policy: TokenEngine;
  reference: TokenEngine | null;
  critic: TokenEngine | null;
  /** For the run header. */
  description: string;
  dispose(): Promise<void>;
}

/**
 * The policy (and its reference, on the same graphs) and the critic on the chosen engine.
 * `entropyGradient`: the loss has an entropy bonus, so the backward graph takes its gradient.
 */
export async function openRlEngines(
  models: { policy: CausalLM; reference: CausalLM | null; critic?: ValueModel | null },
  engine: EngineChoice,
  device: DeviceChoice,
  options: { temperature: number; entropyGradient: boolean },
): Promise<RlEngines> {
  const { policy, reference, critic } = models;
  const onTfjs = await tfjsInstead(engine, device);
  if (onTfjs !== null) {
    return {
      policy: tfjsPolicy(policy, options.temperature),
      reference: reference ? tfjsPolicy(reference, options.temperature) : null,
      critic: critic ? tfjsCritic(critic) : null,
      description: onTfjs,
      dispose: async () => {},
    };
  }
  const lm = await OrtTrainer.create(policy.config, { device, temperature: options.temperature, entropy: true, entropyGradient: options.entropyGradient });
  const value = critic ? await OrtTrainer.create(critic.trunk.config, { device, head: 'value' }) : null;
  return {
    policy: ortPolicy(lm, policy, options.temperature),
    reference: reference ? ortPolicy(lm, reference, options.temperature) : null,
    critic: critic && value ? ortCritic(value, critic) : null,
    description: `onnxruntime${device === 'cuda' ? ' (CUDA)' : ''} forward + backward${critic ? ' (policy, reference and critic)' : reference ? ' (policy and reference)' : ''}, AdamW on tfjs`,
    dispose: async () => {
      await lm.dispose();
      await value?.dispose();
    },
  };
}
