// Constants: paths, attach types, program types.


export const LIBBPF_SONAME = 'libbpf.so.1';
export const BPFFS = '/sys/fs/bpf';
export const CGROUP2_ROOT = '/sys/fs/cgroup/unified';
export const TRACEFS = '/sys/kernel/tracing';
export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
/** Prefix of everything of ours in the kernel: program/map names (fxh_), pins and cgroups (fxh-<pid>-). */
export const NAME_PREFIX = 'fxh';

/** enum bpf_attach_type (linux/bpf.h), the values later users need. */
export const BPF_ATTACH = Object.freeze({
  CGROUP_INET_INGRESS: 0,
  CGROUP_INET_EGRESS: 1,
  CGROUP_INET_SOCK_CREATE: 2,
  CGROUP_SOCK_OPS: 3,
  SK_SKB_STREAM_PARSER: 4,
  SK_SKB_STREAM_VERDICT: 5,
  CGROUP_DEVICE: 6,
  SK_MSG_VERDICT: 7,
  SK_SKB_VERDICT: 38,
});

/** enum bpf_prog_type, for probes and checks. */
export const BPF_PROG_TYPE = Object.freeze({
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  TRACEPOINT: 5,
  XDP: 6,
  CGROUP_SKB: 8,
  SOCK_OPS: 13,
  SK_SKB: 14,
  SK_MSG: 16,
});

/** enum bpf_map_type values whose lookups return one value per possible CPU. */
export const PERCPU_MAP_TYPES = new Set([5, 6, 10, 21]);

/** XDP verdicts (retval of an XDP program under BPF_PROG_RUN). */
export const XDP = Object.freeze({ ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 });

