/**
 * Classic BPF for seccomp filters: the opcodes and return values `seccomp.ts` uses, the encoder
 * to `struct sock_filter[]`, the architecture prologue and a binary search over number ranges.
 * See the kernel's [Seccomp BPF](https://docs.kernel.org/userspace-api/seccomp_filter.html).
 * Private to `sandbox/`.
 * @module
 */

export const BPF_LD_W_ABS = 0x20;
export const BPF_JA = 0x05;
export const BPF_JEQ_K = 0x15;
export const BPF_JGE_K = 0x35;
export const BPF_JSET_K = 0x45;
export const BPF_RET_K = 0x06;
export const RET_ALLOW = 0x7fff0000;
export const RET_ERRNO = 0x00050000;
export const RET_KILL_PROCESS = 0x80000000;

/** One instruction: opcode, jump-if-true, jump-if-false, constant. */
export type Ins = [code: number, jt: number, jf: number, k: number];

/** A range of syscall numbers from `start` (to the next segment) with the same code. */
export interface Segment {
  start: number;
  key: string;
  code: Ins[];
}

/** The code for one syscall number; entries with equal code have equal keys. */
export interface NumberedCode {
  nr: number;
  name: string;
  key: string;
  code: Ins[];
}

/**
 * Merges entries into contiguous number ranges with the same key; the gaps (and everything above
 * the last entry) get `gap`.
 *
 * @param entries sorted by number
 * @param gap key and code of the numbers no entry names
 * @returns the segments, the first starting at 0
 * @throws {Error} when a number is listed twice
 */
export function segments(entries: NumberedCode[], gap: { key: string; code: Ins[] }): Segment[] {
  const out: Segment[] = [];
  const push = (start: number, key: string, code: Ins[]) => {
    if (out.at(-1)?.key !== key) out.push({ start, key, code });
  };
  let next = 0;
  for (const e of entries) {
    if (e.nr < next) throw new Error(`syscall ${e.nr} ("${e.name}") listed twice`);
    if (e.nr > next) push(next, gap.key, gap.code);
    push(e.nr, e.key, e.code);
    next = e.nr + 1;
  }
  push(next, gap.key, gap.code);
  return out;
}

/**
 * Loads `seccomp_data.arch` and kills the process for any other ABI (ia32 on x64): syscall
 * numbers mean something else there.
 *
 * @param audit the `AUDIT_ARCH_*` value of the one ABI allowed
 * @returns three instructions
 */
export function archCheck(audit: number): Ins[] {
  return [[BPF_LD_W_ABS, 0, 0, 4], [BPF_JEQ_K, 1, 0, audit], [BPF_RET_K, 0, 0, RET_KILL_PROCESS]];
}

/**
 * A binary search over the segments on the syscall number (kept in the accumulator). Classic BPF
 * jumps reach 255 instructions, so a longer left branch is skipped with an unconditional jump.
 *
 * @param segs segments sorted by `start`, the first starting at 0
 * @returns the instructions
 */
export function searchTree(segs: Segment[]): Ins[] {
  if (segs.length === 1) return (segs[0] as Segment).code;
  const mid = segs.length >> 1;
  const left = searchTree(segs.slice(0, mid));
  const right = searchTree(segs.slice(mid));
  const k = (segs[mid] as Segment).start;
  if (left.length <= 255) return [[BPF_JGE_K, left.length, 0, k], ...left, ...right];
  return [[BPF_JGE_K, 0, 1, k], [BPF_JA, 0, 0, left.length], ...left, ...right];
}

/**
 * Encodes instructions as `struct sock_filter[]` (little-endian: x64 and arm64).
 *
 * @param ins the program
 * @returns 8 bytes per instruction
 */
export function encode(ins: Ins[]): Uint8Array {
  const out = new Uint8Array(ins.length * 8);
  const view = new DataView(out.buffer);
  ins.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k >>> 0, true);
  });
  return out;
}
