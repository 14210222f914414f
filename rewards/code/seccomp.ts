/**
 * A classic-BPF seccomp filter that forbids creating processes, handed to bubblewrap
 * with `--seccomp FD` (bwrap reads the raw `struct sock_filter` array from the fd, sets
 * `no_new_privs` and installs it just before it executes the sandboxed command).
 *
 * The filter, on the seccomp_data record (nr at offset 0, arch at 4, args[0] at 16):
 *
 *   arch != native                    -> kill the process  (blocks i386 `int 0x80` on x86-64)
 *   x86-64: nr >= 0x40000000 (x32)    -> EPERM
 *   fork, vfork                       -> EPERM             (x86-64 only; arm64 has neither)
 *   clone3                            -> ENOSYS            (flags live in memory BPF cannot read;
 *                                                            glibc then falls back to clone)
 *   clone without CLONE_THREAD        -> EPERM             (threads stay allowed: node and
 *                                                            python start helper threads)
 *   anything else                     -> allow
 *
 * A thread cannot outlive its process, so with this filter the sandboxed program stays
 * one process: `fork`, `subprocess`, `child_process` and `posix_spawn` all fail with
 * EPERM. `execve` stays allowed (the sandbox needs it to start the interpreter); it can
 * only replace the program with another binary from the read-only mounts, in the same
 * process and under the same filter and limits.
 *
 * Only x86-64 and arm64 are covered; `seccompFilter()` returns `null` elsewhere.
 */

// BPF opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JSET_K = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K = 0x06; // BPF_RET | BPF_K

// Return actions (linux/seccomp.h).
const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;

const CLONE_THREAD = 0x00010000;

interface ArchInfo {
  auditArch: number;
  clone: number;
  clone3: number;
  /** Syscalls that always create a process. */
  forks: number[];
  /** Syscall numbers at or above this belong to another ABI (x32). */
  abiLimit: number | null;
}

const ARCHES: Record<string, ArchInfo> = {
  // AUDIT_ARCH_X86_64; arch/x86/entry/syscalls/syscall_64.tbl
  x64: { auditArch: 0xc000003e, clone: 56, clone3: 435, forks: [57, 58], abiLimit: 0x40000000 },
  // AUDIT_ARCH_AARCH64; include/uapi/asm-generic/unistd.h
  arm64: { auditArch: 0xc00000b7, clone: 220, clone3: 435, forks: [], abiLimit: null },
};

type Insn =
  | { op: 'ld'; offset: number }
  | { op: 'jeq' | 'jge' | 'jset'; k: number; t: string | null; f: string | null }
  | { op: 'ret'; k: number }
  | { op: 'label'; name: string };

/** Assembles instructions with symbolic jump targets (null = next instruction). */
function assemble(program: Insn[]): Buffer {
  const labels = new Map<string, number>();
  let n = 0;
  for (const p of program) {
    if (p.op === 'label') labels.set(p.name, n);
    else n++;
  }
  const out = Buffer.alloc(n * 8);
  let i = 0;
  for (const p of program) {
    if (p.op === 'label') continue;
    const rel = (target: string | null): number => {
      if (target === null) return 0;
      const at = labels.get(target);
      if (at === undefined) throw new Error(`seccomp: unknown label ${target}`);
      const d = at - i - 1;
      if (d < 0 || d > 255) throw new Error(`seccomp: jump to ${target} out of range`);
      return d;
    };
    let code: number;
    let jt = 0;
    let jf = 0;
    let k: number;
    if (p.op === 'ld') {
      code = BPF_LD_W_ABS;
      k = p.offset;
    } else if (p.op === 'ret') {
      code = BPF_RET_K;
      k = p.k;
    } else {
      code = p.op === 'jeq' ? BPF_JEQ_K : p.op === 'jge' ? BPF_JGE_K : BPF_JSET_K;
      k = p.k;
      jt = rel(p.t);
      jf = rel(p.f);
    }
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
    i++;
  }
  return out;
}

/** The filter for `arch` (default: this process's), or `null` when the architecture is not covered. */
export function seccompFilter(arch: string = process.arch): Buffer | null {
  const a = ARCHES[arch];
  if (a === undefined) return null;
  const program: Insn[] = [
    { op: 'ld', offset: 4 }, // seccomp_data.arch
    { op: 'jeq', k: a.auditArch, t: null, f: 'kill' },
    { op: 'ld', offset: 0 }, // seccomp_data.nr
  ];
  if (a.abiLimit !== null) program.push({ op: 'jge', k: a.abiLimit, t: 'eperm', f: null });
  for (const nr of a.forks) program.push({ op: 'jeq', k: nr, t: 'eperm', f: null });
  program.push(
    { op: 'jeq', k: a.clone3, t: 'enosys', f: null },
    { op: 'jeq', k: a.clone, t: null, f: 'allow' },
    { op: 'ld', offset: 16 }, // low 32 bits of seccomp_data.args[0] (clone flags on both arches)
    { op: 'jset', k: CLONE_THREAD, t: 'allow', f: 'eperm' },
    { op: 'label', name: 'allow' },
    { op: 'ret', k: SECCOMP_RET_ALLOW },
    { op: 'label', name: 'eperm' },
    { op: 'ret', k: SECCOMP_RET_ERRNO | EPERM },
    { op: 'label', name: 'enosys' },
    { op: 'ret', k: SECCOMP_RET_ERRNO | ENOSYS },
    { op: 'label', name: 'kill' },
    { op: 'ret', k: SECCOMP_RET_KILL_PROCESS },
  );
  return assemble(program);
}
