/**
 * The math-answer verifier: public API of `rewards/math`.
 */
export { verifyMath, DEFAULT_REL_TOL, DEFAULT_TIMEOUT_MS, type VerifyMathOptions } from './verify.ts';
export { extractAnswer } from './extract.ts';
export { parseAnswer, type Value as MathAnswer } from './parse.ts';
