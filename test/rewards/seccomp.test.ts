/**
 * The seccomp filter, run through a small classic-BPF interpreter written here from the
 * kernel's definitions (linux/filter.h, linux/seccomp.h), independent of the assembler.
 */
import { describe, expect, it } from 'vitest';
import { seccompFilter } from '../../rewards/code/seccomp.ts';

const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errno = (e: number) => 0x00050000 | e;

/** Runs a filter on seccomp_data { nr, arch, ip = 0, args }. */
function run(filter: Buffer, nr: number, arch: number, args: number[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt(a), 16 + 8 * i));
  let acc = 0;
  let pc = 0;
  const n = filter.length / 8;
  for (let steps = 0; steps < 1000 && pc < n; steps++) {
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    const cls = code & 0x07;
    if (cls === 0x00) {
      // BPF_LD: only word-sized absolute loads are expected
      expect(code).toBe(0x20);
      acc = data.readUInt32LE(k);
      pc++;
    } else if (cls === 0x05) {
      const op = code & 0xf0;
      expect(code & 0x08).toBe(0); // BPF_K
      let taken: boolean;
      if (op === 0x10) taken = acc === k;
      else if (op === 0x30) taken = acc >= k;
      else if (op === 0x20) taken = acc > k;
      else if (op === 0x40) taken = (acc & k) !== 0;
      else throw new Error(`unexpected jump op ${op}`);
      pc += 1 + (taken ? jt : jf);
    } else if (cls === 0x06) {
      return k >>> 0;
    } else throw new Error(`unexpected instruction class ${cls}`);
  }
  throw new Error('filter fell off the end');
}

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const AARCH64 = 0xc00000b7;
const CLONE_THREAD = 0x10000;
const THREAD_FLAGS = 0x3d0f00; // what glibc's pthread_create passes to clone
const FORK_FLAGS = 0x01200011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD

describe('seccomp filter (x86-64)', () => {
  const f = seccompFilter('x64');
  if (f === null) throw new Error('x64 filter missing');

  it('forbids fork, vfork and non-thread clone with EPERM', () => {
    expect(run(f, 57, X86_64)).toBe(errno(1)); // fork
    expect(run(f, 58, X86_64)).toBe(errno(1)); // vfork
    expect(run(f, 56, X86_64, [FORK_FLAGS])).toBe(errno(1));
    expect(run(f, 56, X86_64, [0x4111])).toBe(errno(1)); // posix_spawn: CLONE_VM | CLONE_VFORK | SIGCHLD
  });

  it('allows threads and ordinary syscalls', () => {
    expect(THREAD_FLAGS & CLONE_THREAD).not.toBe(0);
    expect(run(f, 56, X86_64, [THREAD_FLAGS])).toBe(ALLOW);
    for (const nr of [0, 1, 2, 9, 59, 60, 231, 257]) expect(run(f, nr, X86_64)).toBe(ALLOW); // read, write, open, mmap, execve, exit, exit_group, openat
  });

  it('answers clone3 with ENOSYS so the C library falls back to clone', () => {
    expect(run(f, 435, X86_64)).toBe(errno(38));
  });

  it('kills on a foreign architecture (i386 int 0x80) and refuses x32 numbers', () => {
    expect(run(f, 2, I386)).toBe(KILL_PROCESS); // i386 fork
    expect(run(f, 0x40000000 + 57, X86_64)).toBe(errno(1));
  });
});

describe('seccomp filter (arm64)', () => {
  const f = seccompFilter('arm64');
  if (f === null) throw new Error('arm64 filter missing');
  it('forbids non-thread clone and allows threads', () => {
    expect(run(f, 220, AARCH64, [FORK_FLAGS])).toBe(errno(1));
    expect(run(f, 220, AARCH64, [THREAD_FLAGS])).toBe(ALLOW);
    expect(run(f, 435, AARCH64)).toBe(errno(38));
    expect(run(f, 221, AARCH64)).toBe(ALLOW); // execve
    expect(run(f, 220, X86_64, [THREAD_FLAGS])).toBe(KILL_PROCESS);
  });
});

describe('other architectures', () => {
  it('have no filter', () => {
    expect(seccompFilter('ia32')).toBeNull();
    expect(seccompFilter('riscv64')).toBeNull();
  });
});
