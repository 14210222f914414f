/**
 * Public API of the verifiers (`rlvr/rewards`). This file alone decides what the rewards
 * package exports; `src/index.ts` re-exports all of it.
 */

// contract
export { namedReward, batchColumn, completionText, completionTexts, withTextCompletions } from './types.ts';
export type { RewardBatch, RewardContext, RewardFunction, RewardMessage, RewardSpec, RewardValue } from './types.ts';

// combining and loading
export { scoreCompletions, rewardMetrics, loadRewardFunction, validateBatch, BUILTIN_REWARDS, SCORE_DEFAULTS } from './combine.ts';
export type { ScoreOptions, ScoreResult, RewardError, LoadRewardOptions } from './combine.ts';

// format and shaping rewards
export {
  tagFormatReward,
  scoreTagFormat,
  exactMatchReward,
  numericAnswerReward,
  overlongPenalty,
  overlongPenaltyValue,
  extractTagContent,
  extractNumbers,
  lastNumber,
  parseNumber,
  answerText,
  defaultNormalise,
} from './format.ts';
export type { TagFormatOptions, ExactMatchOptions, NumericAnswerOptions, OverlongOptions } from './format.ts';

// sandboxed code runner
export {
  runCode,
  codeReward,
  extractCode,
  normaliseOutput,
  outputsMatch,
  probeSandbox,
  resetSandboxProbe,
  runSandboxed,
  seccompFilter,
  resolveInterpreter,
  LANGUAGES,
  RUN_CODE_DEFAULTS,
} from './code/index.ts';
export type {
  CodeTest,
  RunCodeOptions,
  RunCodeResult,
  CaseResult,
  CaseStatus,
  CodeRewardOptions,
  SandboxRequest,
  SandboxOutcome,
  SandboxStatus,
  Language,
  Interpreter,
} from './code/index.ts';

// math verifier
export {
  verifyMath,
  verifyMathAsync,
  mathReward,
  extractAnswer,
  parseAnswer,
  configureMathWorkers,
  closeMathWorkers,
  DEFAULT_TIMEOUT_MS as MATH_DEFAULT_TIMEOUT_MS,
  DEFAULT_REL_TOL as MATH_DEFAULT_REL_TOL,
} from './math/index.ts';
export type { VerifyMathOptions, MathRewardOptions, MathWorkerOptions, MathAnswer } from './math/index.ts';
