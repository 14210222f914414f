/** The engine and backend options every training and sampling command takes. */
import { Option } from 'commander';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';
export type EngineName = 'auto' | 'onnxruntime' | 'tfjs';

/** `--engine`, with what it selects in this command. */
export function engineOption(selects: string, defaultValue?: EngineName): Option {
  const o = new Option('--engine <name>', `${selects}: onnxruntime, tfjs, or auto (onnxruntime when it loads)`).choices(['auto', 'onnxruntime', 'tfjs']);
  return defaultValue ? o.default(defaultValue) : o;
}

/** `--backend`: the tfjs backend. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'tfjs backend (what runs on tfjs)').choices(['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).default('auto');
}

/** `--device`: where onnxruntime runs. */
export function deviceOption(): Option {
  return new Option('--device <name>', "where onnxruntime runs (sets device): cpu, or cuda (onnxruntime-node's CUDA build: ONNXRUNTIME_NODE_INSTALL=cuda12, and an NVIDIA GPU)").choices(['cpu', 'cuda']);
}
