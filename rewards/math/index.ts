/**
 * The math-answer verifier: public API of `rewards/math`. See README.md for the rules.
 */
export { verifyMath, DEFAULT_REL_TOL, DEFAULT_TIMEOUT_MS, type VerifyMathOptions } from './verify.ts';
export { verifyMathAsync, closeMathWorkers, configureMathWorkers, type MathWorkerOptions } from './async.ts';
export { extractAnswer } from './extract.ts';
export { parseAnswer, type Value as MathAnswer, type RelOp } from './parse.ts';
export { mathReward, type MathRewardOptions, type MathRewardBatch, type MathRewardFunction } from './reward.ts';
