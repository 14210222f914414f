/** The sandboxed code runner and the code reward. */
export { runCode, normaliseOutput, outputsMatch, RUN_CODE_DEFAULTS } from './run.ts';
export type { CodeTest, RunCodeOptions, RunCodeResult, CaseResult, CaseStatus } from './run.ts';
export { codeReward, extractCode, type CodeRewardOptions } from './reward.ts';
export { probeSandbox, resetSandboxProbe, runSandboxed, INSTALL_HINT } from './sandbox.ts';
export type { SandboxRequest, SandboxOutcome, SandboxStatus } from './sandbox.ts';
export { seccompFilter } from './seccomp.ts';
export { resolveInterpreter, LANGUAGES, type Language, type Interpreter } from './languages.ts';
