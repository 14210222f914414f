/**
 * Public API of rlvr. This file alone decides what the package exports; each module
 * group adds its exports here in the section below that names it.
 */

// engine
export { Rng, type RngState } from './engine/rng.ts';

// objectives
export * from './objectives/index.ts';

// lm model
export {
  type CausalLMConfig,
  type Gpt2Config,
  type LlamaConfig,
  type ModelType,
  type ModelDims,
  SUPPORTED_MODEL_TYPES,
  parseConfig as parseLMConfig,
  toHfConfigJson,
  modelDims,
  tinyGpt2Config,
  tinyLlamaConfig,
} from './lm/config.ts';
export { CausalLM, type ForwardOptions, type ParamSpec, parameterSpecs, ropeTables } from './lm/model.ts';
export { KVCache } from './lm/kv-cache.ts';
