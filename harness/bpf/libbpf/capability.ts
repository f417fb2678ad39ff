// Whether eBPF can run here, and why not.
import fs from 'node:fs';
import os from 'node:os';
import { BPF_PROG_TYPE, LIBBPF_SONAME, VMLINUX_BTF } from './consts.js';
import { errnoName } from './errors.js';
import { L, probeLibrary } from './ffi.js';

export type BpfCapability = { ok: true } | { ok: false; reason: string };

export interface CapabilityProbe {
  getuid: () => number;
  /** CapEff of this process (bit n = capability n) */
  capEff: () => bigint;
  libbpfPath: string;
  btfPath: string;
  /** 0 when a bpf() syscall (an XDP program probe) works, else the positive errno */
  probeSyscall: () => number;
}

const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

function readCapEff(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

function defaultProbe(): CapabilityProbe {
  return {
    getuid: () => process.getuid?.() ?? -1,
    capEff: readCapEff,
    libbpfPath: LIBBPF_SONAME,
    btfPath: VMLINUX_BTF,
    probeSyscall: () => {
      const r = L().libbpf_probe_bpf_prog_type(BPF_PROG_TYPE.XDP, null);
      if (r === 1) return 0;
      return r < 0 ? -r : 95; /* EOPNOTSUPP: the kernel rejected a trivial XDP program */
    },
  };
}

/**
 * Whether this process can load and run eBPF programs here. Checks, in order: root or CAP_BPF,
 * libbpf.so.1 loadable, the bpf() syscall (a trivial XDP program loads), kernel BTF.
 * Every part is injectable for tests.
 */
export function bpfCapability(probe: Partial<CapabilityProbe> = {}): BpfCapability {
  const p = { ...defaultProbe(), ...probe };
  const uid = p.getuid();
  if (uid !== 0) {
    const caps = p.capEff();
    const hasBpf = ((caps >> CAP_BPF) & 1n) === 1n || ((caps >> CAP_SYS_ADMIN) & 1n) === 1n;
    if (!hasBpf) {
      return { ok: false, reason: `not root (uid ${uid}) and no CAP_BPF/CAP_SYS_ADMIN: loading eBPF programs needs root (run as root, or grant CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN)` };
    }
  }
  const libProblem = probeLibrary(p.libbpfPath);
  if (libProblem) return { ok: false, reason: libProblem };
  let e: number;
  try {
    e = p.probeSyscall();
  } catch (err) {
    return { ok: false, reason: `bpf() syscall probe failed: ${(err as Error).message}` };
  }
  if (e === os.constants.errno.ENOSYS) return { ok: false, reason: 'the kernel has no bpf() syscall (CONFIG_BPF_SYSCALL is off): ENOSYS' };
  if (e === os.constants.errno.EPERM || e === os.constants.errno.EACCES) {
    return { ok: false, reason: `the bpf() syscall is denied (${errnoName(e)}): missing privileges, kernel lockdown or a seccomp filter` };
  }
  if (e !== 0) return { ok: false, reason: `the bpf() syscall is unavailable: a trivial XDP program does not load (${errnoName(e)})` };
  if (!fs.existsSync(p.btfPath)) return { ok: false, reason: `no kernel BTF at ${p.btfPath} (kernel built without CONFIG_DEBUG_INFO_BTF)` };
  return { ok: true };
}

