// SPDX-License-Identifier: GPL-2.0
/*
 * roce-kern.bpf.c - where an RDMA operation's time goes inside SoftRoCE (loader:
 * harness/bpf/roce-kern.ts). One kprobe per rxe stage stamps (time, stage, CPU, pid) into a ring
 * buffer while fxh_rk_cfg[0] is set; user space walks the stamps of one operation at a time.
 *
 * Why kprobes: the rdma_core tracepoints fire for kernel users of the CQ API, not for user-space
 * verbs over rxe, and rdma_cma only for connection management; rxe itself has no tracepoints.
 * The probes read no arguments, so they need no kernel struct layouts (no CO-RE): they load on
 * any kernel, and a stage whose function is missing (renamed, inlined) is skipped by the loader.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct rk_event {
  __u64 ts;
  __u32 stage;
  __u32 cpu;
  __u32 pid;
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 22);
} fxh_rk_rb SEC(".maps");

/* [0] on/off */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} fxh_rk_cfg SEC(".maps");

/* per stage: stamps taken; last slot: stamps lost (ring buffer full) */
#define RK_STAGES 8
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RK_STAGES + 1);
  __type(key, __u32);
  __type(value, __u64);
} fxh_rk_count SEC(".maps");

static __always_inline int stamp(__u32 stage) {
  __u32 zero = 0;
  __u32 *on = bpf_map_lookup_elem(&fxh_rk_cfg, &zero);
  if (!on || !*on) return 0;
  __u64 *n = bpf_map_lookup_elem(&fxh_rk_count, &stage);
  struct rk_event *e = bpf_ringbuf_reserve(&fxh_rk_rb, sizeof(*e), 0);
  if (!e) {
    __u32 lost = RK_STAGES;
    __u64 *l = bpf_map_lookup_elem(&fxh_rk_count, &lost);
    if (l) *l += 1;
    return 0;
  }
  e->ts = bpf_ktime_get_ns();
  e->stage = stage;
  e->cpu = bpf_get_smp_processor_id();
  e->pid = bpf_get_current_pid_tgid() >> 32;
  e->pad = 0;
  bpf_ringbuf_submit(e, 0);
  if (n) *n += 1;
  return 0;
}

/* the order of an operation's path; harness/bpf/roce-kern.ts names them in the same order */
SEC("kprobe/rxe_post_send") int fxh_rk_post(void *ctx) { return stamp(0); }
SEC("kprobe/rxe_requester") int fxh_rk_req(void *ctx) { return stamp(1); }
SEC("kprobe/rxe_xmit_packet") int fxh_rk_xmit(void *ctx) { return stamp(2); }
SEC("kprobe/rxe_udp_encap_recv") int fxh_rk_udp(void *ctx) { return stamp(3); }
SEC("kprobe/rxe_rcv") int fxh_rk_rcv(void *ctx) { return stamp(4); }
SEC("kprobe/rxe_responder") int fxh_rk_resp(void *ctx) { return stamp(5); }
SEC("kprobe/rxe_completer") int fxh_rk_comp(void *ctx) { return stamp(6); }
SEC("kprobe/rxe_cq_post") int fxh_rk_cqpost(void *ctx) { return stamp(7); }

char LICENSE[] SEC("license") = "GPL";
