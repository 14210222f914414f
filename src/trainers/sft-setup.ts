/**
 * The start of an SFT run: the examples (generated, or read from JSONL), the tokenizer and
 * the model (a folder, a checkpoint, or a fresh from-scratch model), and the encoded
 * train and eval sets, checked against the model's context before any weights load.
 */
import { Rng } from '../core/rng.ts';
import { loadCausalLM, readModelDims } from '../lm/checkpoint.ts';
import { CausalLM } from '../lm/model.ts';
import { type Tokenizer, loadTokenizer } from '../lm/tokenizer.ts';
import { initModelConfig, taskTokenizer } from './from-scratch.ts';
import { type EncodedSftExample, type SftExample, encodeSftExamples, generateSftExamples, loadSftExamples } from './prompts.ts';
import type { SftConfig } from './sft-config.ts';

/** The run's independent random streams: weight initialisation and batch order. */
export function sftRunRngs(seed: number): { init: Rng; data: Rng } {
  const root = new Rng(seed);
  const init = new Rng(root.nextUint32());
  return { init, data: new Rng(root.nextUint32()) };
}

/**
 * Loads or builds the data, tokenizer and model a config describes (or a checkpoint holds),
 * and encodes the examples: for a model folder, from its config.json and tokenizer before its
 * weights load, so that an example too long for its context is an error first.
 */
export async function prepareSft(
  config: SftConfig,
  resumeFrom: string | undefined,
): Promise<{ train: SftExample[]; trainSet: EncodedSftExample[]; evalSet: EncodedSftExample[]; tokenizer: Tokenizer; model: CausalLM }> {
  let train: SftExample[];
  let test: SftExample[];
  if (config.data.generate) {
    ({ train, test } = generateSftExamples(config.data.generate));
  } else {
    train = await loadSftExamples(config.data.trainFile!);
    test = config.data.testFile ? await loadSftExamples(config.data.testFile) : [];
  }
  const encode = (tokenizer: Tokenizer, limits: { maxPositions: number; vocabSize: number }) => ({
    trainSet: encodeSftExamples(train, tokenizer, limits),
    evalSet: encodeSftExamples(test.slice(0, config.evalSize), tokenizer, limits),
  });
  const dir = resumeFrom ?? config.model.modelDir;
  if (dir) {
    const tokenizer = await loadTokenizer(dir);
    const dims = await readModelDims(dir);
    if (tokenizer.vocabSize > dims.vocabSize) {
      throw new Error(`${resumeFrom ? resumeFrom : `model.modelDir ${dir}`}: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary only ${dims.vocabSize}`);
    }
    const sets = encode(tokenizer, dims);
    const { model } = await loadCausalLM(dir);
    return { train, ...sets, model, tokenizer };
  }
  const tokenizer = taskTokenizer(config.data, [...train, ...test]);
  const model = CausalLM.create(initModelConfig(config.model.init!, tokenizer), sftRunRngs(config.seed).init);
  try {
    return { train, ...encode(tokenizer, model.dims), model, tokenizer };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

