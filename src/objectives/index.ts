/** The shared policy-gradient math: returns and GAE, group advantages, log-probs, KL, entropy, PPO and GRPO losses. */
export {
  discountedReturns,
  computeGae,
  whiten,
  explainedVariance,
  type GaeInput,
  type GaeOutput,
} from './returns.ts';
export { groupAdvantages, groupStats, type GroupScale, type GroupAdvantageOptions, type GroupStats } from './group.ts';
export { logSoftmax, tokenLogprobs } from './logprobs.ts';
export { klK1, klK2, klK3 } from './kl.ts';
export { categoricalEntropy, gaussianEntropy, gaussianLogProb } from './entropy.ts';
export {
  clippedSurrogate,
  valueLoss,
  aggregateLoss,
  maskedMean,
  LOSS_TYPES,
  type LossType,
  type SurrogateInputs,
  type SurrogateConfig,
  type SurrogateOutput,
  type ValueLossOptions,
} from './ppo.ts';
export {
  grpoLoss,
  grpoLossTensors,
  type GrpoLossInputs,
  type GrpoLossConfig,
  type GrpoMetrics,
  type GrpoLossTensors,
} from './grpo-loss.ts';
export {
  tokenGae,
  maskedWhiten,
  type TokenGaeInput,
  type TokenGaeOutput,
  tokenRewards,
  type TokenRewardInput,
} from './token-gae.ts';
