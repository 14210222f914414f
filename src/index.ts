/**
 * Public API of rlvr. This file alone decides what the package exports; each module
 * group adds its exports here in the section below that names it.
 */

// engine
export { Rng, type RngState } from './core/rng.ts';

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
export { CausalLM, type ForwardOptions, type CachedForwardOptions, type ParamSpec, parameterSpecs, ropeTables } from './lm/model.ts';
export { KVCache } from './lm/kv-cache.ts';
export { loadCausalLM, saveCausalLM, type LoadedCausalLM, type SaveOptions } from './lm/checkpoint.ts';

// engine config
export {
  ConfigError,
  type ConfigDefinition,
  type ConfigOf,
  type ConfigSchema,
  type ParseOptions as ConfigParseOptions,
  type ResolveOptions as ConfigResolveOptions,
  defineConfig,
  parseConfig,
  resolveConfig,
  loadConfigFile,
  mergeConfig,
  parseSetOverrides,
  flagOverrides,
  describeConfig,
  describeType,
  didYouMean,
} from './core/config.ts';

// report
export { METRIC_NAMES, allMetricNames } from './report/metric-names.ts';
export {
  MetricsWriter,
  SampleWriter,
  readMetrics,
  readSamples,
  RUN_FILES,
  type MetricRecord,
  type SampleRecord,
  type OpenOptions as MetricsOpenOptions,
  type ReadOptions as MetricsReadOptions,
} from './report/metrics.ts';
export {
  TrainingProgress,
  DEFAULT_PROGRESS_FIELDS,
  printRunHeader,
  type ProgressOptions,
  type ProgressField,
  type ProgressStream,
  type RunHeaderInfo,
} from './report/progress.ts';
export {
  lineChartSvg,
  lineChartSpec,
  aggregateSeeds,
  svgToPng,
  findSystemFonts,
  type LineChartOptions,
  type LineSeries,
  type PngOptions,
} from './report/plot.ts';
export {
  renderRunReport,
  writeRunReport,
  reportFromMetricsFile,
  defaultCharts,
  summarizeMetrics,
  numericMetricKeys,
  type ChartSpec,
  type MetricsRow,
  type RunReportInput,
  type ReportFromFileOptions,
  type ReportFromFileResult,
} from './report/html.ts';
export { writeFileAtomic, writeJsonAtomic } from './core/atomic.ts';
export { escapeHtml, formatNumber, formatDuration, formatCount, flattenConfig } from './report/format.ts';

// lm tokenizers
export { type Tokenizer, type ChatMessage, type ChatTemplateOptions, loadTokenizer, TransformersTokenizer, TOKENIZER_FILES } from './lm/tokenizer.ts';
export {
  CharTokenizer,
  type CharTokenizerOptions,
  PAD_TOKEN,
  EOS_TOKEN,
  UNK_TOKEN,
  BOS_TOKEN,
  CHAR_TOKENIZER_MARKER,
} from './lm/char-tokenizer.ts';

// datasets
export { loadJsonl, parseJsonl, writeJsonl, type JsonlOptions, type JsonRow, type JsonType } from '../datasets/jsonl.ts';
export { splitTrainTest, dedupeByPrompt, type Split as TrainTestSplit, type SplitOptions } from '../datasets/split.ts';
export { readTable, datasetSplits, pickEvalSplit, EVAL_SPLITS, type ReadTableOptions, type Table, type TableRow } from '../datasets/table.ts';
export { loadPromptTable, parseColumnMap, mapColumns, PROMPT_FORMATS, type PromptFormat, type PromptTable, type PromptTableOptions, type PromptTableRow } from '../datasets/prompts.ts';
export { parseMessages } from '../datasets/chat.ts';
export { fromGsm8k, gsm8kFinalAnswer } from '../datasets/gsm8k.ts';
export {
  generateArithmetic,
  makeArithmeticSplits,
  saveArithmeticSplits,
  arithmeticProblemCount,
  ARITHMETIC_OPS,
  MAX_DIGITS as ARITHMETIC_MAX_DIGITS,
  ANSWER_OPEN,
  ANSWER_CLOSE,
  type ArithmeticConfig,
  type ArithmeticExample,
  type ArithmeticFormat,
  type ArithmeticOp,
  type ArithmeticSplitConfig,
  type DigitRange,
} from '../datasets/arithmetic/generate.ts';
export { arithmeticTokenizer, ARITHMETIC_ALPHABET } from './trainers/from-scratch.ts';

// control envs
export {
  makeEnv,
  makeVecEnv,
  ENV_IDS,
  angleNormalize,
  type ActionSpace,
  type BoxSpace,
  type Env,
  type EnvId,
  type EpisodeStats,
  type ObservationSpace,
  type StepResult,
  type VecEnv,
  type VecStepResult,
} from './control/envs/index.ts';

// engine: backend, wasm kernel fixes, safetensors, tensor helpers
export { initEngine, describeEngine, type EngineBackend, type EngineInfo, type EngineOptions } from './engine/tfjs/backend.ts';
export { applyWasmFixes } from './engine/tfjs/kernels/index.ts';
export {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
  toFloat32,
  fromFloat32,
  type SafetensorsDType,
  type SafetensorsTensor,
  type SafetensorsFile,
} from './core/safetensors.ts';
export {
  numElements,
  randomNormal,
  randomUniform,
  assertShape,
  tensorFromSafetensors,
  safetensorsFromTensor,
} from './engine/tfjs/tensor.ts';

// lm sampler
export {
  generate,
  generateText,
  toPaddedBatch,
  sampleToken,
  samplingDistribution,
  tfjsSampler,
  generateWith,
  modelLimits,
  type Sampler,
  type DecodeBackend,
  type DecoderLimits,
  type GenerateWithOptions,
  type GenerateOptions,
  type GenerateTextOptions,
  type GenerationResult,
  type TextGenerationResult,
  type FinishReason,
  type SamplingParams,
  type TokenDistribution,
} from './lm/sampler.ts';
// onnxruntime engine: graphs, sessions, sampler, export
export { GraphBuilder, decodeModel, IR_VERSION, OPSET } from './engine/onnx/graph.ts';
export { causalLMGraph, serializeCausalLM, type CausalLMGraphOptions } from './engine/onnx/causal-lm-graph.ts';
export { OrtCausalLM, readWeights, type OrtCausalLMOptions, type WeightRoute } from './engine/onnx/causal-lm.ts';
export { onnxSampler, type EngineSampler, type OnnxSamplerOptions } from './engine/onnx/sampler.ts';
export { exportOnnx, EXTERNAL_DATA_BYTES, type ExportOptions, type ExportResult } from './engine/onnx/export.ts';
export { loadOrt, ortAvailable, createSession, type SessionOptions } from './engine/onnx/runtime.ts';
export { openRlEngines, openSampler, type RlEngines } from './trainers/sampling-engine.ts';
export { OrtTrainer, type OrtTrainerOptions, type ScoreBatch, type TokenOutputs, type WeightSource } from './engine/onnx/trainer.ts';
export { type StepResult as TokenStepResult, type TokenEngine, type TokenObjective, type TokenStats, ortCritic, ortPolicy, scoreBatch, tfjsCritic, tfjsPolicy } from './trainers/token-engine.ts';
export { ENGINES, type EngineChoice } from './trainers/sft-config.ts';
// lm per-token boundary and value head
export {
  type LogprobBatch,
  type ValueModel,
  allRows,
  batchLogprobs,
  buildLogprobBatch,
  criticTokenValues,
  criticValuesNoGrad,
  gatherRows,
  logprobsNoGrad,
  policyTokenStats,
  sequenceLogprobs,
} from './lm/token-stats.ts';
export { VALUE_HEAD_FILE, ValueHead } from './lm/value-head.ts';

// trainers: shared stages
export {
  type BatchOrderState,
  type EncodedPromptRow,
  type EncodedSftExample,
  type PromptRow,
  type SftExample,
  ShuffledBatches,
  encodePromptRows,
  encodeSftExamples,
  exampleFingerprint,
  generateSftExamples,
  generatedPromptRows,
  loadPromptRows,
  loadSftExamples,
  promptFingerprint,
  renderPrompt,
} from './trainers/prompts.ts';
export {
  type RewardsAndData,
  type Rollout,
  type RolloutSummary,
  type SamplingOptions,
  type ScoredRollout,
  checkRewardColumns,
  collectRollout,
  concatScores,
  loadPromptData,
  loadRewardSpecs,
  prepareRewardsAndData,
  rewardBatch,
  rolloutMetrics,
  sampleRollout,
  samplingOptions,
  scoreRollout,
  summarizeRollouts,
} from './trainers/rollout.ts';
export { type SftBatch, type TokenBatch, type TokenBatchOptions, buildTokenBatch, makeSftBatch, minibatches, shuffledMinibatches } from './trainers/token-batch.ts';
export { type UpdateStepOptions, NonFiniteLossError, updateStep } from './trainers/update.ts';
export { type PromptEvalResult, type PromptEvalSample, evaluatePrompts, exactMatch, extractTaggedAnswer } from './trainers/evaluate.ts';
export { type RunLoopOptions, type RunLoopResult, type RunOutput, createAdamW, makeSchedule, runLoop } from './trainers/run.ts';
export {
  type NamedVariables,
  OPTIMIZER_FILE,
  STATE_FORMATS,
  TRAINER_STATE_FILE,
  changedFields,
  fileSha256,
  latestCheckpoint,
  listCheckpoints,
  modelWeightsSha256,
  optimizerStateBytes,
  readTrainerStateJson,
  restoreOptimizerState,
  saveTrainerCheckpoint,
} from './trainers/trainer-state.ts';
export { ArithmeticGenerateSchema, type RlConfig, type RlRewardEntry } from './trainers/rl-config.ts';
export {
  type WarmStartConfig,
  type WarmStartResult,
  carryFreeSum,
  startingPolicy,
  warmStart,
  warmStartGenerate,
  warmStartSftConfig,
  withCarryErrors,
} from './trainers/warm-start.ts';

// trainers: SFT
export {
  SftConfig,
  type SftGenerateConfig,
  type SftInitConfig,
  checkSftConfig,
  parseSftConfig,
  resolveSftConfig,
} from './trainers/sft-config.ts';
export {
  type SftEvalResult,
  type SftEvalSample,
  type SftRunOptions,
  type SftRunResult,
  type SftTrainerState,
  evaluateSft,
  readSftTrainerState,
  sftLoss,
  sftTrainStep,
  trainSft,
} from './trainers/sft.ts';
export { initModelConfig, taskTokenizer } from './trainers/from-scratch.ts';
export { SFT_PRESETS, sftPreset } from './trainers/presets.ts';

// trainers: GRPO
export { GrpoConfig, type GrpoRewardEntry, checkGrpoConfig, parseGrpoConfig, resolveGrpoConfig } from './trainers/grpo-config.ts';
export {
  type CollectedStep,
  type GrpoRunOptions,
  type GrpoRunResult,
  type GrpoTrainerState,
  type StepBatch,
  type UpdateMetrics,
  type UpdateOptions,
  GRPO_STATE_FORMAT,
  collectStep,
  grpoObjective,
  grpoStatsObjective,
  grpoUpdate,
  informativeGroups,
  optimizeStep,
  readGrpoTrainerState,
  rolloutAdvantages,
  stepMetrics,
  trainGrpo,
} from './trainers/grpo.ts';
export { type RlRunOptions, type RlRunResult, type RlSetup, type RlTrainerState, readRlTrainerState, setupRlRun } from './trainers/rl-setup.ts';
export { promptEvaluator, logPromptEvaluation } from './trainers/evaluate.ts';

// trainers: PPO with a critic, and the comparison with GRPO
// (the control suite's PPO owns the name PpoConfig; the language-model one is LmPpoConfig here)
export { PpoConfig as LmPpoConfig, checkPpoConfig, parsePpoConfig, resolvePpoConfig } from './trainers/ppo-config.ts';
export {
  type CriticUpdateMetrics,
  type PolicyUpdateMetrics,
  type PpoModels,
  type PpoTargets,
  type PpoTrainerState,
  CRITIC_DIR,
  PPO_STATE_FORMAT,
  criticObjective,
  criticUpdate,
  policyObjective,
  policyUpdate,
  ppoStep,
  ppoTargets,
  readPpoTrainerState,
  trainPpo,
} from './trainers/ppo.ts';
export { MATCHED_SETTINGS, type ComparisonOptions, type ComparisonResult, checkMatchedBudget, runComparison } from './trainers/compare.ts';
export { type ComparisonRun, type ComparisonReportOptions, COMPARISON_FILES, comparisonHtml, comparisonMarkdown, loadComparison, summarizeComparison, writeComparison } from './report/compare.ts';


// rewards
export * from '../rewards/index.ts';

// control algorithms
export {
  CategoricalDistribution,
  DiagGaussianDistribution,
  sampleCategorical,
  sampleDiagGaussian,
  type ActionDistribution,
} from './control/distributions.ts';
export {
  ActorCritic,
  DEFAULT_ARCHITECTURE,
  POLICY_FILES,
  orthogonalMatrix,
  policyActionSpace,
  clipActions,
  savePolicy,
  loadPolicy,
  type ActResult,
  type LoadedPolicy,
  type ParamGroup,
  type PolicyActionSpace,
  type PolicyArchitecture,
  type PolicyMeta,
  type SavePolicyInfo,
} from './control/policy.ts';
export { RolloutBuffer, RolloutCollector, minibatchAdvantages, type Minibatch, type RolloutBufferShape, type RolloutStats } from './control/buffer.ts';
export { RunningMeanStd, ObsNormalizer, RewardNormalizer, type RunningMeanStdState, type ObsNormalizerState } from './control/normalize.ts';
export {
  constantSchedule as constantProgressSchedule,
  linearSchedule as linearProgressSchedule,
  makeSchedule as makeProgressSchedule,
  scheduleStart,
  type ProgressSchedule,
  type ScheduleSpec,
} from './control/schedule.ts';
export { RmsProp, gradientStep, type Optimizer, type GradientStepResult } from './control/optimize.ts';
export {
  conjugateGradient,
  backtrackingLineSearch,
  fisherVectorProduct,
  naturalGradientStep,
  type CgResult,
  type FisherVectorProduct,
  type LineSearchOptions,
  type LineSearchResult,
  type NaturalStepOptions,
  type NaturalStepResult,
} from './control/natural-gradient.ts';
export { ALGORITHMS, type AlgoName, type ControlAlgorithm, type UpdateResult } from './control/algorithm.ts';
export { ALGORITHM_CONFIGS, createAlgorithm, type ControlConfigOf, type AnyControlConfig } from './control/algorithms/index.ts';
export { ReinforceConfig, createReinforce } from './control/algorithms/reinforce.ts';
export { A2cConfig, createA2c } from './control/algorithms/a2c.ts';
export { NpgConfig, createNpg } from './control/algorithms/npg.ts';
export { TrpoConfig, createTrpo } from './control/algorithms/trpo.ts';
export { PpoConfig, createPpo, type PpoAlgorithm, type PpoMinibatchStats } from './control/algorithms/ppo.ts';
export { CONTROL_PRESETS, CLEANRL_PPO_CARTPOLE, presetFor, type ControlPreset } from './control/presets.ts';
export { evaluatePolicy, type EvaluateOptions, type EvalResult } from './control/evaluate.ts';
export {
  trainControl,
  resolveControlConfig,
  DEFAULT_CONTROL_STEPS,
  type TrainControlOptions,
  type TrainControlResult,
  type ControlMetricsRow,
  type ResolveControlConfigOptions,
  type ResolvedControlConfig,
} from './control/train.ts';
export {
  runControlBench,
  benchJobs,
  readBenchRun,
  resampleCurve,
  summarizeRuns,
  benchTable,
  learningCurveSvg,
  writeBenchReport,
  BENCH_TARGETS,
  RETURN_RANGES,
  type BenchJob,
  type BenchOptions,
  type BenchRun,
  type BenchCell,
  type BenchResult,
} from './control/bench.ts';

// engine performance: wasm kernel fixes (cost model, restore) and gradient checkpointing of the lm blocks
export { removeWasmFixes, wasmFixesApplied, WASM_FIX_NAMES, splitBatchPays, UNCACHED_B_MIN_ROWS } from './engine/tfjs/kernels/index.ts';
export { blockActivationBytes, CHECKPOINT_AUTO_BYTES } from './lm/model.ts';
