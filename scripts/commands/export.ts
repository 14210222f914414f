/**
 * `rlvr export onnx --model DIR --out DIR [--external-data] [--overwrite]`: write a model
 * folder in the layout that `@huggingface/transformers` loads for text generation
 * (onnx/model.onnx with the Optimum input/output names, config.json,
 * generation_config.json, tokenizer files); see src/engine/onnx/export.ts.
 */
import type { Command } from 'commander';
import { exportOnnx } from '../../src/engine/onnx/export.ts';
import { initEngine } from '../../src/engine/tfjs/backend.ts';

export function register(program: Command): void {
  const exp = program.command('export').description('export a model folder to another format');
  exp
    .command('onnx')
    .description('write a folder that transformers.js and onnxruntime load: onnx/model.onnx (KV-cached, Optimum names), config.json, generation_config.json, tokenizer files')
    .requiredOption('--model <dir>', 'a Hugging Face model folder (e.g. runs/grpo/final)')
    .requiredOption('--out <dir>', 'the folder to write')
    .option('--external-data', 'store the weights in onnx/model.onnx_data (automatic past 1.8 GiB)', false)
    .option('--overwrite', 'replace an existing --out folder', false)
    .action(async (opts: { model: string; out: string; externalData: boolean; overwrite: boolean }) => {
      await initEngine({ backend: 'auto', quiet: true });
      const t0 = performance.now();
      const r = await exportOnnx(opts.model, opts.out, { overwrite: opts.overwrite, externalData: opts.externalData ? true : 'auto' });
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      process.stdout.write(
        `exported ${r.parameters.toLocaleString('en-US')} parameters to ${r.outDir} in ${s} s: ${r.files.join(', ')}${r.externalData ? ' (weights in onnx/model.onnx_data)' : ''}\n` +
          `load it with transformers.js: AutoModelForCausalLM.from_pretrained(<folder>, { local_files_only: true, dtype: 'fp32' })\n`,
      );
    });
}
