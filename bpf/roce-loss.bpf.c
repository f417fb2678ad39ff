// SPDX-License-Identifier: GPL-2.0
/*
 * roce-loss.bpf.c - map-controlled loss injection for RoCEv2 in XDP (loader: harness/bpf/roce-loss.ts).
 *
 * Rules (fxh_rl_rules, written by user space) select well-formed RoCEv2 packets by destination
 * QPN (and address, when set) and drop either every Nth selected packet or the packets whose PSN
 * is in [lo, hi] (mod 2^24), at most `max_drops` per rule, so a retransmission can get through and
 * the RC transport recovers. Every drop is counted per rule and logged (QPN, PSN, opcode) in the
 * ring fxh_rl_log. A packet that is not dropped goes on to the program in fxh_rl_next[0] (the
 * telemetry, so it sees exactly what the receiver sees), or passes when the slot is empty.
 * XDP cannot hold a packet back: delays are not injected here (a TC program with an EDT qdisc
 * could; the guest's kernel has no tcx links, see roce.bpf.c).
 */
#include "roce.h"

#define RL_RULES 8
#define RL_LOG 256
#define RL_ANY_QP 0xffffffff

enum { RL_NTH = 1, RL_PSN_RANGE = 2 };

struct rl_rule {
  __u32 kind;      /* 0 off, RL_NTH, RL_PSN_RANGE */
  __u32 dqpn;      /* RL_ANY_QP: any */
  __u32 daddr[4];  /* all zero: any destination address */
  __u32 every_n;   /* RL_NTH: drop selected packets n, 2n, 3n, ... */
  __u32 psn_lo;    /* RL_PSN_RANGE */
  __u32 psn_hi;
  __u32 max_drops; /* 0: no limit */
  __u32 requests_only; /* 1: select request packets only (no ACKs, read responses) */
};

struct rl_state {
  __u64 selected;
  __u64 dropped;
};

struct rl_drop {
  __u32 dqpn;
  __u32 psn;
  __u32 opcode;
  __u32 rule;
};

enum { RLG_SEEN, RLG_ROCE, RLG_DROPPED, RLG_NEXT_MISSING, RLG_N };

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, RL_RULES);
  __type(key, __u32);
  __type(value, struct rl_rule);
} fxh_rl_rules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, RL_RULES);
  __type(key, __u32);
  __type(value, struct rl_state);
} fxh_rl_state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, RL_LOG);
  __type(key, __u32);
  __type(value, struct rl_drop);
} fxh_rl_log SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, RLG_N);
  __type(key, __u32);
  __type(value, __u64);
} fxh_rl_glob SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} fxh_rl_next SEC(".maps");

static __always_inline __u64 rl_add(__u32 i) {
  __u64 *v = bpf_map_lookup_elem(&fxh_rl_glob, &i);
  return v ? __sync_fetch_and_add(v, 1) : 0;
}

static __always_inline int rl_matches(struct rl_rule *r, struct roce_pkt *p) {
  if (r->kind != RL_NTH && r->kind != RL_PSN_RANGE) return 0;
  if (r->dqpn != RL_ANY_QP && r->dqpn != p->dqpn) return 0;
  if (r->requests_only && !p->request) return 0;
  if (r->daddr[0] | r->daddr[1] | r->daddr[2] | r->daddr[3]) {
    if (r->daddr[0] != p->daddr[0] || r->daddr[1] != p->daddr[1] || r->daddr[2] != p->daddr[2] || r->daddr[3] != p->daddr[3]) return 0;
  }
  return 1;
}

/* whether rule i drops the packet (and the accounting when it does) */
static __always_inline int rl_rule(__u32 i, struct roce_pkt *p) {
  struct rl_rule *r = bpf_map_lookup_elem(&fxh_rl_rules, &i);
  struct rl_state *st = bpf_map_lookup_elem(&fxh_rl_state, &i);
  if (!r || !st || !rl_matches(r, p)) return 0;
  __u64 n = __sync_fetch_and_add(&st->selected, 1) + 1;
  int drop;
  if (r->kind == RL_NTH) drop = r->every_n && n % r->every_n == 0;
  else drop = ((p->psn - r->psn_lo) & 0xffffff) <= ((r->psn_hi - r->psn_lo) & 0xffffff);
  if (!drop) return 0;
  if (r->max_drops && st->dropped >= r->max_drops) return 0;
  __sync_fetch_and_add(&st->dropped, 1);
  __u32 slot = rl_add(RLG_DROPPED) % RL_LOG;
  struct rl_drop *d = bpf_map_lookup_elem(&fxh_rl_log, &slot);
  if (d) {
    d->dqpn = p->dqpn;
    d->psn = p->psn;
    d->opcode = p->opcode;
    d->rule = i;
  }
  return 1;
}

SEC("xdp")
int fxh_roce_loss(struct xdp_md *ctx) {
  rl_add(RLG_SEEN);
  struct roce_pkt p = {};
  if (roce_parse((void *)(long)ctx->data, (void *)(long)ctx->data_end, &p) == RV_OK) {
    rl_add(RLG_ROCE);
#pragma unroll
    for (__u32 i = 0; i < RL_RULES; i++)
      if (rl_rule(i, &p)) return XDP_DROP;
  }
  bpf_tail_call(ctx, &fxh_rl_next, 0);
  rl_add(RLG_NEXT_MISSING);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
