/**
 * Public API of rlvr. This file alone decides what the package exports; each module
 * group adds its exports here in the section below that names it.
 */

// engine
export { Rng, type RngState } from './engine/rng.ts';

// objectives
export * from './objectives/index.ts';
