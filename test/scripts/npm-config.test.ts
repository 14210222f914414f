/**
 * The npm side of the setup: `npx rlvr` prints no npm warnings (the project has no .npmrc
 * keys npm does not know), and onnxruntime-node's CUDA download stays skipped without them:
 * package.json's `allowScripts` denies its install script to npm 11, and `.ci/run` and the
 * README's setup command set `ONNXRUNTIME_NODE_INSTALL=skip` for the npm 10 of older Node.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './cli-helpers.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; allowScripts?: Record<string, boolean> };

describe('npm configuration', () => {
  it('npx rlvr --version prints the version and no npm warning', () => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (/^npm_config_onnxruntime/i.test(k)) delete env[k];
    const result = spawnSync('npx', ['--no-install', 'rlvr', '--version'], { cwd: ROOT, encoding: 'utf8', env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
    expect(result.stderr).not.toMatch(/npm warn/i);
  });

  it('onnxruntime-node\'s install script stays skipped: denied in allowScripts, ONNXRUNTIME_NODE_INSTALL=skip before npm ci', () => {
    expect(existsSync(join(ROOT, '.npmrc')) ? readFileSync(join(ROOT, '.npmrc'), 'utf8') : '').not.toMatch(/onnxruntime/);
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/^export ONNXRUNTIME_NODE_INSTALL=skip\n(?:.*\n)*?npm ci /m);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.split('```')[1]).toContain('ONNXRUNTIME_NODE_INSTALL=skip npm ci');
  });
});
