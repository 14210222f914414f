/**
 * A checkpoint survives a power cut once `saveCausalLM` returns: every file of the temporary
 * folder (config.json, model.safetensors, the tokenizer, trainer_state.json,
 * optimizer.safetensors, subfolders' files) is flushed to disk before the folder is renamed
 * into place, the folder itself is flushed before the rename, and the parent folder after
 * it. The file-system calls are recorded through a pass-through mock of node:fs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const calls = vi.hoisted(() => [] as string[]);

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const paths = new Map<number, string>();
  const openSync = ((path: string, ...rest: unknown[]) => {
    const fd = (fs.openSync as (...a: unknown[]) => number)(path, ...rest);
    paths.set(fd, String(path));
    return fd;
  }) as typeof fs.openSync;
  const fsyncSync = ((fd: number) => {
    calls.push(`fsync ${paths.get(fd)}`);
    return fs.fsyncSync(fd);
  }) as typeof fs.fsyncSync;
  const renameSync = ((from: string, to: string) => {
    calls.push(`rename ${from} -> ${to}`);
    return fs.renameSync(from, to);
  }) as typeof fs.renameSync;
  const mocked = { ...fs, openSync, fsyncSync, renameSync };
  return { ...mocked, default: mocked };
});

const { Rng } = await import('../../src/core/rng.ts');
const { saveCausalLM } = await import('../../src/lm/checkpoint.ts');
const { tinyGpt2Config } = await import('../../src/lm/config.ts');
const { CausalLM } = await import('../../src/lm/model.ts');
const { arithmeticTokenizer } = await import('../../src/trainers/from-scratch.ts');
const { useCpu } = await import('./lm-helpers.ts');

let root: string;
beforeAll(async () => {
  await useCpu();
  root = mkdtempSync(join(tmpdir(), 'rlvr-durability-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('saveCausalLM durability', () => {
  it('flushes every file and the folder before the rename into place, and the parent after it', async () => {
    const model = CausalLM.create(tinyGpt2Config({ vocab_size: 22, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 }), new Rng(3));
    const target = join(root, 'checkpoint-1');
    calls.length = 0;
    await saveCausalLM(model, arithmeticTokenizer(), target, {
      extraFiles: { 'trainer_state.json': '{"step": 1}\n', 'optimizer.safetensors': new Uint8Array([1, 2, 3]), 'critic/model.safetensors': new Uint8Array([4]) },
    });
    model.dispose();
    const swap = calls.findIndex((c) => c.startsWith('rename ') && c.endsWith(` -> ${target}`));
    expect(swap, calls.join('\n')).toBeGreaterThan(0);
    const tmp = calls[swap]!.slice('rename '.length, calls[swap]!.indexOf(' -> '));
    expect(basename(tmp)).toMatch(/^\.checkpoint-1\.saving-\d+-\d+-\d+$/);
    const before = calls.slice(0, swap);
    for (const f of ['config.json', 'model.safetensors', 'trainer_state.json', 'optimizer.safetensors', 'critic/model.safetensors']) {
      expect(before, f).toContain(`fsync ${join(tmp, f)}`);
    }
    // The tokenizer's files are written atomically themselves (flushed under a temporary name, renamed).
    expect(before.some((c) => c.startsWith(`fsync ${join(tmp, 'tokenizer.json')}.`))).toBe(true);
    expect(before).toContain(`fsync ${tmp}`);
    expect(before).toContain(`fsync ${join(tmp, 'critic')}`);
    expect(calls.slice(swap + 1)).toContain(`fsync ${root}`);
  });
});
