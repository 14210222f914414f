/**
 * `rlvr export onnx`: a model folder in, a folder that `@huggingface/transformers` (and any
 * onnxruntime application) loads for text generation out:
 *
 *   <out>/onnx/model.onnx          the KV-cached graph (Optimum / transformers.js names:
 *                                  input_ids, attention_mask, position_ids,
 *                                  past_key_values.{i}.key/value -> logits, present.{i}.*),
 *                                  weights as initializers
 *   <out>/onnx/model.onnx_data     the weights, when they pass `EXTERNAL_DATA_BYTES` (2 GB
 *                                  protobuf limit), announced in config.json as
 *                                  transformers.js_config.use_external_data_format
 *   <out>/config.json, generation_config.json, tokenizer files, model.safetensors
 *                                  (so the folder also loads in rlvr and in PyTorch)
 *
 * The folder is written beside the target and renamed into place; an existing folder is
 * refused unless `overwrite`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadCausalLM, saveCausalLM } from '../../lm/checkpoint.ts';
import { toHfConfigJson } from '../../lm/config.ts';
import { loadTokenizer } from '../../lm/tokenizer.ts';
import { readWeights } from './causal-lm.ts';
import { causalLMGraph } from './causal-lm-graph.ts';

/** Weights above this many bytes go to `onnx/model.onnx_data` (protobuf messages stop at 2 GiB). */
export const EXTERNAL_DATA_BYTES = 1.8 * 2 ** 30;

export interface ExportOptions {
  /** Replace an existing folder at `outDir`. */
  overwrite?: boolean;
  /** Weights in `onnx/model.onnx_data`: 'auto' (past EXTERNAL_DATA_BYTES), or always / never. */
  externalData?: 'auto' | boolean;
}

export interface ExportResult {
  outDir: string;
  files: string[];
  parameters: number;
  externalData: boolean;
  graphBytes: number;
}

export async function exportOnnx(modelDir: string, outDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const src = resolve(modelDir);
  const out = resolve(outDir);
  if (src === out) throw new Error(`export onnx: --out must differ from --model (${out})`);
  if (existsSync(out) && readdirSync(out).length > 0 && !options.overwrite) {
    throw new Error(`export onnx: ${out} already exists and is not empty; choose another --out or pass --overwrite to replace it`);
  }
  const { model, tokenizerDir } = await loadCausalLM(src);
  try {
    const tokenizer = await loadTokenizer(tokenizerDir);
    const graph = causalLMGraph(model.config, readWeights(model));
    const ext = options.externalData ?? 'auto';
    const external = ext === 'auto' ? graph.weightBytes() > EXTERNAL_DATA_BYTES : ext;
    const { model: bytes, externalData } = graph.serialize({ externalData: external ? 'model.onnx_data' : undefined, docString: `exported by rlvr from ${src}` });
    const config: Record<string, unknown> = toHfConfigJson(model.config);
    if (external) config['transformers.js_config'] = { use_external_data_format: true };
    const extraFiles: Record<string, string | Uint8Array> = {
      'onnx/model.onnx': bytes,
      'config.json': JSON.stringify(config, null, 2) + '\n',
    };
    if (externalData) extraFiles['onnx/model.onnx_data'] = externalData.data;
    await saveCausalLM(model, tokenizer, out, { extraFiles });
    return { outDir: out, files: readdirSync(out).sort(), parameters: model.numParameters(), externalData: external, graphBytes: bytes.byteLength };
  } finally {
    model.dispose();
  }
}
