// SPDX-License-Identifier: GPL-2.0
/*
 * selftest.bpf.c - programs that exercise the attach paths of harness/bpf/libbpf.ts (used by
 * test/ebpf.test.ts): a tracepoint with a counter map and a ring buffer, and a cgroup_skb program
 * for cgroup attachment (bpf_link and bpf_prog_attach).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* fxh_st_cfg[0]: the argument of the getpgid() calls that are counted (set by the loader after
 * load). The test passes a value above PID_MAX_LIMIT that nothing else asks about, so only its own
 * calls count: filtering by process or thread was flaky, because the runtime calls getpid() itself. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} fxh_st_cfg SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} fxh_st_count SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} fxh_st_rb SEC(".maps");

/* the layout of tracefs' events/syscalls/sys_enter_getpgid/format */
struct sys_enter_getpgid {
  __u64 common;
  __s32 syscall_nr;
  __u32 pad;
  __u64 pid;
};

SEC("tracepoint/syscalls/sys_enter_getpgid")
int fxh_st_getpgid(struct sys_enter_getpgid *ctx) {
  __u32 zero = 0;
  __u32 *want = bpf_map_lookup_elem(&fxh_st_cfg, &zero);
  if (!want || *want != ctx->pid) return 0;
  __u64 *count = bpf_map_lookup_elem(&fxh_st_count, &zero);
  if (!count) return 0;
  __u64 n = __sync_fetch_and_add(count, 1) + 1;
  __u64 *ev = bpf_ringbuf_reserve(&fxh_st_rb, sizeof(__u64), 0);
  if (ev) {
    *ev = n;
    bpf_ringbuf_submit(ev, 0);
  }
  return 0;
}

/* lets every packet through; only its attachment matters */
SEC("cgroup_skb/egress")
int fxh_st_egress(struct __sk_buff *skb) {
  return 1;
}

char LICENSE[] SEC("license") = "GPL";
