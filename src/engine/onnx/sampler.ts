/**
 * The onnxruntime `Sampler`: the shared generation loop of `src/lm/sampler.ts` (same
 * procedure, seeds and log-probs as the tfjs sampler) over an `OrtCausalLM` that follows a
 * tfjs model's weights. Before each `generate` the weights are compared with the ones the
 * session holds (tfjs replaces a variable's buffer on every optimizer step) and brought in
 * when they changed, so a trainer's next rollout always samples the current policy.
 */
import type { CausalLM } from '../../lm/model.ts';
import { type GenerateOptions, type GenerationResult, type Sampler, generateWith } from '../../lm/sampler.ts';
import { OrtCausalLM, type OrtCausalLMOptions, type WeightRoute } from './causal-lm.ts';
import { defaultThreads } from './runtime.ts';

/** A `Sampler` holding native resources: call `dispose` when done. */
export interface EngineSampler extends Sampler {
  /** How the engine runs, for run headers ("onnxruntime, 2 threads, weights as initializers"). */
  readonly description: string;
  /** Weight syncs so far and the seconds they took. */
  syncStats(): { syncs: number; seconds: number };
  dispose(): Promise<void>;
}

export interface OnnxSamplerOptions extends OrtCausalLMOptions {
  // `route` defaults to 'inputs' here: a trainer changes the weights before every rollout,
  // and a rebuilt session pays its build and a cold first run each time, which costs more
  // than pre-packed weights save at these sizes (scripts/bench-sampler.ts).
  /** Checked between tokens; an aborted generation rejects with the signal's reason. */
  signal?: AbortSignal;
}

export async function onnxSampler(model: CausalLM, options: OnnxSamplerOptions = {}): Promise<EngineSampler> {
  const { signal, ...ortOptions } = options;
  const lm = await OrtCausalLM.fromModel(model, { ...ortOptions, route: ortOptions.route ?? 'inputs' });
  const route: WeightRoute = lm.route;
  const threads = options.threads ?? defaultThreads();
  return {
    name: 'onnxruntime',
    description: `onnxruntime${options.device === 'cuda' ? ' (CUDA)' : ''}, ${threads} thread${threads === 1 ? '' : 's'}, weights ${route === 'inputs' ? 'fed as graph inputs' : 'as initializers (session rebuilt after an update)'}`,
    async generate(prompts: number[][], gen: GenerateOptions): Promise<GenerationResult> {
      await lm.sync(model);
      return generateWith(() => lm.decoder(), lm.limits, prompts, { ...gen, signal });
    },
    syncStats: () => ({ syncs: lm.syncs, seconds: lm.syncSeconds }),
    dispose: () => lm.dispose(),
  };
}
