/**
 * The stable metric names every trainer logs, one constant each, so that trainers never
 * spell a metric as a string literal. Each name is explained (what it is, how it is
 * computed) in docs/metrics.md; a test keeps the two in step.
 *
 * Names are `namespace/metric[/stat]`. Per-reward-function names are built by the
 * functions below from the reward function's name.
 */

function checkFnName(fn: string): string {
  if (fn.length === 0 || fn.includes('/') || /\s/.test(fn)) {
    throw new Error(`metric names: reward function name must be non-empty without "/" or spaces, got ${JSON.stringify(fn)}`);
  }
  return fn;
}

export const METRIC_NAMES = {
  reward: {
    mean: 'reward/mean',
    std: 'reward/std',
    fracZeroStd: 'reward/frac_zero_std',
    /** Failed reward-function calls this step, all functions together. */
    errors: 'reward/errors',
    /** Mean reward of one reward function: `reward/<fn>/mean`. */
    fnMean: (fn: string) => `reward/${checkFnName(fn)}/mean`,
    /** Failed calls of one reward function this step: `reward/<fn>/errors`. */
    fnErrors: (fn: string) => `reward/${checkFnName(fn)}/errors`,
  },
  train: {
    loss: 'train/loss',
    kl: 'train/kl',
    entropy: 'train/entropy',
    clipRatioLow: 'train/clip_ratio/low',
    clipRatioHigh: 'train/clip_ratio/high',
    clipRatioRegion: 'train/clip_ratio/region',
    gradNorm: 'train/grad_norm',
    learningRate: 'train/learning_rate',
    policyLoss: 'train/policy_loss',
    valueLoss: 'train/value_loss',
    approxKl: 'train/approx_kl',
    clipFrac: 'train/clip_frac',
    explainedVariance: 'train/explained_variance',
    clipRatio: 'train/clip_ratio',
  },
  critic: {
    valueLoss: 'critic/value_loss',
    valueClipRatio: 'critic/value_clip_ratio',
    explainedVariance: 'critic/explained_variance',
    valuesMean: 'critic/values_mean',
    returnsMean: 'critic/returns_mean',
    gradNorm: 'critic/grad_norm',
    learningRate: 'critic/learning_rate',
  },
  rollout: {
    completionLengthMean: 'rollout/completion_length/mean',
    completionLengthMin: 'rollout/completion_length/min',
    completionLengthMax: 'rollout/completion_length/max',
    truncatedRatio: 'rollout/truncated_ratio',
    tokens: 'rollout/tokens',
    epReturn: 'rollout/ep_return',
    epLength: 'rollout/ep_length',
  },
  eval: {
    accuracy: 'eval/accuracy',
    loss: 'eval/loss',
  },
  time: {
    generateS: 'time/generate_s',
    rewardS: 'time/reward_s',
    trainS: 'time/train_s',
    referenceS: 'time/reference_s',
    valuesS: 'time/values_s',
    criticUpdateS: 'time/critic_update_s',
    policyUpdateS: 'time/policy_update_s',
    stepS: 'time/step_s',
    stepsPerS: 'time/steps_per_s',
  },
  throughput: {
    tokensPerS: 'throughput/tokens_per_s',
  },
  memory: {
    tensorMb: 'memory/tensor_mb',
    rssMb: 'memory/rss_mb',
  },
} as const;

/**
 * Every name in `METRIC_NAMES`, with per-function templates spelled with the placeholder
 * `<fn>` (as docs/metrics.md writes them).
 */
export function allMetricNames(): string[] {
  const out: string[] = [];
  for (const group of Object.values(METRIC_NAMES)) {
    for (const v of Object.values(group)) {
      out.push(typeof v === 'function' ? v('fn').replace('/fn/', '/<fn>/') : v);
    }
  }
  return out;
}
