/**
 * `device: 'cuda'`: onnxruntime on the GPU when onnxruntime-node's CUDA build is installed,
 * and otherwise a clear error saying how to install it; with the tfjs engine it is refused
 * rather than ignored; an unknown device is a config error naming the field.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src/core/rng.ts';
import { CausalLM } from '../../../src/lm/model.ts';
import { parseGrpoConfig } from '../../../src/trainers/grpo-config.ts';
import { openSampler, openTrainer } from '../../../src/trainers/sampling-engine.ts';
import { TINY_CONFIGS, useCpu } from '../../lm/lm-helpers.ts';

beforeAll(useCpu);

describe('--device cuda', () => {
  it('samples on the GPU where the CUDA build is installed, else fails naming the install', async () => {
    const model = CausalLM.create(TINY_CONFIGS[0]![1], new Rng(1));
    try {
      const sampler = await openSampler(model, 'onnxruntime', 'cuda').catch((e: Error) => e);
      if (sampler instanceof Error) {
        expect(sampler.message).toMatch(/CUDA execution provider is not available .*ONNXRUNTIME_NODE_INSTALL=cuda12.*--device cpu/);
        await expect(openTrainer(model, 'auto', 'cuda')).rejects.toThrow(/CUDA execution provider is not available/);
      } else {
        expect(sampler.description).toMatch(/CUDA/);
        const r = await sampler.generate([[1, 2, 3]], { numGenerations: 2, maxNewTokens: 4, temperature: 1, eosTokenId: 0, padTokenId: 0, rng: new Rng(0) });
        expect(r.completionIds.length).toBe(2);
        await sampler.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  it('is refused with the tfjs engine, and an unknown device names the field', async () => {
    const model = CausalLM.create(TINY_CONFIGS[0]![1], new Rng(1));
    await expect(openSampler(model, 'tfjs', 'cuda')).rejects.toThrow(/"device" cuda .* "engine" tfjs/);
    await expect(openTrainer(model, 'tfjs', 'cuda')).rejects.toThrow(/"device" cuda/);
    model.dispose();
    expect(() => parseGrpoConfig({ device: 'gpu' })).toThrow(/device/);
  });
});
