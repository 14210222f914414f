import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  codeReward,
  extractCode,
  normaliseOutput,
  outputsMatch,
  runCode,
  scoreCompletions,
  type RewardBatch,
} from '../../rewards/index.ts';

describe('output comparison', () => {
  it('ignores trailing whitespace per line, CRLF and trailing empty lines only', () => {
    expect(normaliseOutput('a  \r\nb\t\n\n\n')).toBe('a\nb');
    expect(outputsMatch('1 2 \n3\n\n', '1 2\n3')).toBe(true);
    expect(outputsMatch(' 1\n', '1\n')).toBe(false); // leading space matters
    expect(outputsMatch('1\n\n2', '1\n2')).toBe(false); // inner empty line matters
    expect(outputsMatch('', '\n\n')).toBe(true);
  });
});

describe('extractCode', () => {
  it('takes the last block tagged with the language, else the last untagged block, else everything', () => {
    const c = 'First:\n```python\nprint(1)\n```\nBetter:\n```py\nprint(2)\n```\n```js\nconsole.log(3)\n```';
    expect(extractCode(c, 'python')).toBe('print(2)\n');
    expect(extractCode(c, 'javascript')).toBe('console.log(3)\n');
    expect(extractCode('text\n```\nprint(4)\n```\n', 'python')).toBe('print(4)\n');
    expect(extractCode('print(5)', 'python')).toBe('print(5)');
  });
});

describe('runCode', () => {
  const add = {
    python: 'import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n',
    javascript: "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n",
  } as const;
  const tests = [
    { input: '1 2\n', expectedOutput: '3\n' },
    { input: '-5 5', expectedOutput: '0' },
    { input: '2 2', expectedOutput: '5' }, // wrong on purpose
  ];

  for (const language of ['python', 'javascript'] as const) {
    it(`runs ${language} from stdin to stdout and grades each case`, async () => {
      const r = await runCode({ language, code: add[language], tests });
      expect(r.total).toBe(3);
      expect(r.passed).toBe(2);
      expect(r.cases.map((c) => c.status)).toEqual(['passed', 'passed', 'failed']);
      expect(r.cases[2]?.stdout.trim()).toBe('4');
      expect(r.cases.every((c) => c.timeMs > 0)).toBe(true);
    });
  }

  it('reports a crash as error with its stderr, and a non-zero exit with the right output as error', async () => {
    const r = await runCode({
      language: 'python',
      code: 'import sys\nx = int(sys.stdin.read())\nprint(x)\nsys.exit(3 if x == 2 else 0)\n',
      tests: [
        { input: 'oops', expectedOutput: '' },
        { input: '2', expectedOutput: '2' },
        { input: '7', expectedOutput: '7' },
      ],
    });
    expect(r.cases.map((c) => c.status)).toEqual(['error', 'error', 'passed']);
    expect(r.cases[0]?.stderr).toContain('ValueError');
    expect(r.cases[1]?.exitCode).toBe(3);
  });

  it('accepts ES module syntax for javascript and keeps unicode output intact', async () => {
    const code = "import { readFileSync } from 'node:fs';\nconsole.log(readFileSync(0, 'utf8').trim().split('').reverse().join(''));\n";
    const r = await runCode({ language: 'javascript', code, tests: [{ input: 'héllo ✓', expectedOutput: '✓ olléh' }] });
    expect(r.cases[0]?.stderr).toBe('');
    expect(r.passed).toBe(1);
    const py = await runCode({ language: 'python', code: 'print(input()[::-1])', tests: [{ input: 'héllo ✓', expectedOutput: '✓ olléh' }] });
    expect(py.passed).toBe(1);
  });

  it('treats a program that ignores its (large) input as any other', async () => {
    const r = await runCode({ language: 'python', code: 'print(42)', tests: [{ input: 'x'.repeat(1 << 20), expectedOutput: '42' }] });
    expect(r.passed).toBe(1);
  });

  it('rejects bad options with errors naming the field', async () => {
    const base = { language: 'python' as const, code: 'print(1)', tests: [{ input: '', expectedOutput: '1' }] };
    await expect(runCode({ ...base, language: 'ruby' as 'python' })).rejects.toThrow(/language must be one of javascript, python/);
    await expect(runCode({ ...base, timeoutMs: 0 })).rejects.toThrow(/timeoutMs must be an integer in \[1, 600000\]/);
    await expect(runCode({ ...base, memoryMb: 8 })).rejects.toThrow(/memoryMb must be an integer in \[32, 65536\]/);
    await expect(runCode({ ...base, tests: [{ input: 1 } as never] })).rejects.toThrow(/test 0 must be \{ input: string, expectedOutput: string \}/);
  });
});

describe('codeReward', () => {
  const tests = [
    { input: '3', expectedOutput: '9' },
    { input: '4', expectedOutput: '16' },
    { input: '-2', expectedOutput: '4' },
    { input: '0', expectedOutput: '0' },
  ];
  const batch = (completions: string[], rows: unknown[]): RewardBatch => ({
    prompts: completions.map(() => 'square a number'),
    completions,
    completionIds: completions.map(() => [1, 2, 3]),
    tests: rows,
  });

  it('gives the pass fraction of the extracted program, and null where a row has no tests', async () => {
    const completions = [
      'Square it:\n```python\nn = int(input())\nprint(n * n)\n```',
      'Doubles instead:\n```python\nn = int(input())\nprint(abs(n) * 2 if n != 3 else 9)\n```',
      'no code here, just prose',
      'n/a',
    ];
    const fn = codeReward({ timeoutMs: 2000 });
    const values = await fn(batch(completions, [tests, tests, tests, null]));
    // program 2: 3 -> 9 right, 4 -> 8 wrong, -2 -> 4 right, 0 -> 0 right; prose is a syntax error
    expect(values).toEqual([1, 0.75, 0, null]);
  });

  it('plugs into scoreCompletions and reports malformed test rows as an error of the function', async () => {
    const fn = codeReward({ language: 'javascript' });
    const good = batch(['```js\nconst n = Number(require("fs").readFileSync(0, "utf8")); console.log(n * n);\n```'], [tests]);
    const r = await scoreCompletions(good, [{ name: 'code', fn }]);
    expect(r.errors).toEqual([]);
    expect(Array.from(r.rewards)).toEqual([1]);
    const bad = batch(['print(1)'], [[{ in: '1' }]]);
    const e = await scoreCompletions(bad, [{ name: 'code', fn }]);
    expect(e.errors[0]?.message).toMatch(/column 'tests' row 0: test 0 must be/);
    expect(e.perFunction.code).toEqual([null]);
  });

  it('stops its sandboxes when the combiner times it out', async () => {
    const mark = `${3000 + (process.pid % 1000)}.77`;
    const sleep = existsSync('/usr/bin/sleep') ? '/usr/bin/sleep' : '/bin/sleep';
    const fn = codeReward({ timeoutMs: 20_000 });
    // exec keeps the pid (allowed under the filter); the marker finds the process.
    const slow = batch([`import os\nos.execv('${sleep}', ['sleep', '${mark}'])`], [[{ input: '', expectedOutput: '' }]]);
    const running = () => readdirSync('/proc').filter((d) => {
      try {
        return /^\d+$/.test(d) && readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(mark);
      } catch {
        return false;
      }
    });
    let settled = false;
    const pending = scoreCompletions(slow, [{ name: 'code', fn }], { timeoutMs: 2500 }).finally(() => {
      settled = true;
    });
    let seen = false;
    while (!seen && !settled) {
      seen = running().length > 0;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toBe(true);
    const r = await pending;
    expect(r.errors[0]).toEqual({ name: 'code', message: 'timed out after 2500 ms', count: 1 });
    for (let i = 0; i < 100 && running().length > 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(running()).toEqual([]);
  });
});
