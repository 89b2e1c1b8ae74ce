// Shared by the seccomp tests: a classic BPF interpreter for the programs `sandbox/seccomp.ts`
// emits, the kernel's rule for a stack of filters, and the constants both tests use.
import assert from "node:assert/strict";
import { seccompRules } from "../../sandbox/seccomp.ts";

export const AUDIT_ARCH: Record<string, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
export const ALLOW = 0x7fff0000;
export const KILL_PROCESS = 0x80000000;
export const errno = (e: number) => 0x00050000 | e;
export const EPERM = 1;
export const EACCES = 13;
export const ENOSYS = 38;
export const EAFNOSUPPORT = 97;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const AF_VSOCK = 40;
export const SOCK_STREAM = 1;
export const SOCK_RAW = 3;

/** Runs a classic BPF seccomp program on one `seccomp_data` (the instructions it emits only). */
export function evaluate(prog: Uint8Array, arch: number, nr: number, args: number[] = []): number {
  const code = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(0, nr, true);
  data.setUint32(4, arch, true);
  args.forEach((a, i) => data.setBigUint64(16 + 8 * i, BigInt(a), true));
  let acc = 0;
  let pc = 0;
  for (let steps = 0; steps < prog.length / 8; steps++) {
    assert.ok(pc * 8 < prog.length, `jump past the end at ${pc}`);
    const op = code.getUint16(pc * 8, true);
    const jt = code.getUint8(pc * 8 + 2);
    const jf = code.getUint8(pc * 8 + 3);
    const k = code.getUint32(pc * 8 + 4, true);
    if (op === 0x06) return k; // ret k
    if (op === 0x20) acc = data.getUint32(k, true); // ld [k]
    else if (op === 0x05) pc += k; // ja
    else if (op === 0x15) pc += acc === k ? jt : jf;
    else if (op === 0x35) pc += acc >= k ? jt : jf;
    else if (op === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else assert.fail(`unexpected BPF opcode 0x${op.toString(16)}`);
    pc++;
  }
  return assert.fail("the program did not return");
}

/**
 * What the kernel answers for a stack of filters (newest first): the action of highest
 * precedence, compared as signed 32-bit values (KILL_PROCESS < ... < ERRNO < ... < ALLOW), the
 * newest filter winning a tie (kernel/seccomp.c, seccomp_run_filters).
 */
export function stacked(answers: number[]): number {
  const action = (k: number) => (k & 0xffff0000) | 0;
  return answers.reduce((best, k) => (action(k) < action(best) ? k : best));
}

export function nrOf(arch: string, name: string): number {
  const rule = seccompRules(arch)?.find((r) => r.name === name);
  assert.ok(rule, `${name} on ${arch}`);
  return rule.nr;
}
