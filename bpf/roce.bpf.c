// SPDX-License-Identifier: GPL-2.0
/*
 * roce.bpf.c - RoCEv2 per-QP telemetry in XDP (loader: harness/bpf/roce.ts).
 *
 * Why XDP and not TC: an XDP bpf_link dies with the process that made it on every kernel
 * (SIGKILL included), while TC on the SoftRoCE guest's 6.1 kernel can attach only through
 * netlink (tcx links came in 6.6), which outlives us. On a veth pair the two ingress hooks see
 * both directions, so one object attached to both ends sees every packet once. What XDP cannot do
 * is see the egress of a single netdev, or delay a packet (see roce-loss.bpf.c).
 *
 * Per QP, keyed by (destination address, destination QPN) - QPNs are per device, so two devices
 * may use the same number - it counts packets by opcode class, and operations (first or only
 * packet of a message) and payload bytes of first arrivals (a retransmitted request counts once); for requests (the PSN stream the QP receives) PSNs skipped
 * (loss upstream) and the times the stream went back (retransmissions); for AETH-carrying responses
 * the ACKs, NAKs by code and RNR NAKs the QP receives; and the request-to-ACK time: a request
 * asking for an ACK is stamped on arrival (by requester, responder, PSN of its last packet), and
 * the ACK, read response or atomic ACK coming back with that PSN closes it, attributed to the
 * requester's QP (the ACK's destination). Stamps of requests acknowledged by a later, coalesced
 * ACK stay until the LRU evicts them. Malformed packets are counted in fxh_roce_glob by reason.
 */
#include "roce.h"

struct roce_qp_key {
  __u32 daddr[4];
  __u32 dqpn;
};

#define NAK_CODES 5
#define RTT_BUCKETS 16

struct roce_qp_stats {
  __u64 pkts[RC_N];
  __u64 ops[RC_N];
  __u64 bytes[RC_N];
  __u64 ack_req;
  __u64 psn_missing;  /* PSNs skipped in the request stream */
  __u64 gap_events;   /* times the stream jumped forward */
  __u64 psn_behind;   /* times the request stream went back (a go-back-N resend, a duplicate) */
  __u64 acks;         /* AETH syndromes 000: ACK */
  __u64 naks[NAK_CODES]; /* AETH 011, code 0 PSN sequence error .. 4 invalid RD request */
  __u64 rnr_naks;     /* AETH 001 */
  __u64 rtt_count;
  __u64 rtt_sum_ns;
  __u64 rtt_min_ns;
  __u64 rtt_max_ns;
  __u64 rtt_hist[RTT_BUCKETS]; /* bucket i: [2^(i+9), 2^(i+10)) ns; 0 also below, 15 also above */
  __u64 first_ns;
  __u64 last_ns;
  __u64 retransmitted; /* request packets whose PSN had already arrived: not counted in ops/bytes */
  __u32 next_psn;     /* the request PSN expected next in sequence */
  __u32 psn_valid;
  __u32 high_psn;     /* one past the highest request PSN that arrived */
  __u32 hole_lo;      /* the PSNs last skipped, [hole_lo, hole_hi): their late first arrivals count */
  __u32 hole_hi;
  __u32 pad;
};

struct roce_pend_key {
  __u32 req[4];  /* requester address */
  __u32 resp[4]; /* responder address */
  __u32 psn;     /* PSN of the request's last packet (the ACK carries it) */
};

struct roce_cfg {
  __u32 pmtu; /* path MTU in bytes: how many PSNs a read request consumes; 0: resync after reads */
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct roce_qp_key);
  __type(value, struct roce_qp_stats);
} fxh_roce_qp SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct roce_pend_key);
  __type(value, __u64);
} fxh_roce_pend SEC(".maps");

/* [RV_*]: packets by parse outcome ([RV_OK] = RoCEv2 packets counted), then the extra reasons */
enum { G_QP_FULL = RV_N, G_SEEN, G_N };

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, G_N);
  __type(key, __u32);
  __type(value, __u64);
} fxh_roce_glob SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct roce_cfg);
} fxh_roce_cfg SEC(".maps");

static const struct roce_qp_stats zero_stats;

static __always_inline void glob(__u32 i) {
  __u64 *v = bpf_map_lookup_elem(&fxh_roce_glob, &i);
  if (v) *v += 1;
}

static __always_inline struct roce_qp_stats *qp_stats(__u32 *addr, __u32 qpn) {
  struct roce_qp_key k = {};
  __builtin_memcpy(k.daddr, addr, 16);
  k.dqpn = qpn;
  struct roce_qp_stats *s = bpf_map_lookup_elem(&fxh_roce_qp, &k);
  if (s) return s;
  bpf_map_update_elem(&fxh_roce_qp, &k, &zero_stats, BPF_NOEXIST); /* EEXIST: another CPU won */
  s = bpf_map_lookup_elem(&fxh_roce_qp, &k);
  if (!s) glob(G_QP_FULL);
  return s;
}

static __always_inline __u32 log2_u64(__u64 v) {
  __u32 r = 0;
#pragma unroll
  for (int s = 32; s > 0; s >>= 1) {
    if (v >> s) {
      v >>= s;
      r += s;
    }
  }
  return r;
}

/* Request stream bookkeeping; returns whether the packet is a first arrival of its PSN (counted in
 * ops and bytes) or a retransmission of one that already arrived. A go-back-N resend after a loss
 * first fills the hole (first arrivals) and then repeats PSNs already seen (retransmissions). */
static __always_inline int track_request(struct roce_qp_stats *s, struct roce_pkt *p, __u64 now) {
  /* a read request consumes one PSN per response packet */
  __u32 span = 1;
  int resync = 0;
  if (p->cls == RC_READ_REQ) {
    __u32 key = 0;
    struct roce_cfg *c = bpf_map_lookup_elem(&fxh_roce_cfg, &key);
    __u32 pmtu = c ? c->pmtu : 0;
    if (!pmtu) resync = 1; /* cannot tell where the stream goes on */
    else if (p->dma_len > pmtu) span = (p->dma_len + pmtu - 1) / pmtu;
  }
  int first = 1;
  if (s->psn_valid) {
    if (psn_diff(p->psn, s->next_psn) < 0) __sync_fetch_and_add(&s->psn_behind, 1);
    __s32 d = psn_diff(p->psn, s->high_psn);
    if (d > 0) {
      __sync_fetch_and_add(&s->psn_missing, d);
      __sync_fetch_and_add(&s->gap_events, 1);
      s->hole_lo = s->high_psn;
      s->hole_hi = p->psn;
    } else if (d < 0) {
      /* inside the last hole: its first arrival; the hole closes from the bottom */
      if (psn_diff(p->psn, s->hole_lo) >= 0 && psn_diff(p->psn, s->hole_hi) < 0) s->hole_lo = (p->psn + span) & 0xffffff;
      else first = 0;
    }
  }
  if (first || !s->psn_valid) {
    __u32 end = (p->psn + span) & 0xffffff;
    if (!s->psn_valid || psn_diff(end, s->high_psn) > 0) s->high_psn = end;
  }
  if (resync) {
    s->psn_valid = 0;
  } else {
    s->next_psn = (p->psn + span) & 0xffffff;
    s->psn_valid = 1;
  }
  if (!first) __sync_fetch_and_add(&s->retransmitted, 1);
  if (p->ack_req && p->last) {
    struct roce_pend_key k = {};
    __builtin_memcpy(k.req, p->saddr, 16);
    __builtin_memcpy(k.resp, p->daddr, 16);
    k.psn = (p->psn + span - 1) & 0xffffff;
    /* a retransmission keeps the first stamp: the time runs from the first send */
    bpf_map_update_elem(&fxh_roce_pend, &k, &now, first ? BPF_ANY : BPF_NOEXIST);
  }
  return first;
}

static __always_inline void track_response(struct roce_qp_stats *s, struct roce_pkt *p, __u64 now) {
  __u8 kind = p->syndrome >> 5;
  if (kind == 1) {
    __sync_fetch_and_add(&s->rnr_naks, 1);
    return;
  }
  if (kind == 3) {
    __u32 code = p->syndrome & 0x1f;
    if (code < NAK_CODES) __sync_fetch_and_add(&s->naks[code], 1);
    return;
  }
  if (kind != 0) return;
  __sync_fetch_and_add(&s->acks, 1);
  /* the ACK travels responder -> requester: swap the addresses to find the request's stamp */
  struct roce_pend_key k = {};
  __builtin_memcpy(k.req, p->daddr, 16);
  __builtin_memcpy(k.resp, p->saddr, 16);
  k.psn = p->psn;
  __u64 *t0 = bpf_map_lookup_elem(&fxh_roce_pend, &k);
  if (!t0) return;
  __u64 dt = now - *t0;
  bpf_map_delete_elem(&fxh_roce_pend, &k);
  __sync_fetch_and_add(&s->rtt_count, 1);
  __sync_fetch_and_add(&s->rtt_sum_ns, dt);
  if (s->rtt_min_ns == 0 || dt < s->rtt_min_ns) s->rtt_min_ns = dt;
  if (dt > s->rtt_max_ns) s->rtt_max_ns = dt;
  __u32 b = log2_u64(dt);
  b = b > 9 ? b - 9 : 0;
  if (b >= RTT_BUCKETS) b = RTT_BUCKETS - 1;
  __sync_fetch_and_add(&s->rtt_hist[b], 1);
}

/* the telemetry itself, callable from other programs of this object (BPF_PROG_RUN tests) */
static __always_inline int roce_account(void *data, void *end) {
  glob(G_SEEN);
  struct roce_pkt p = {};
  int v = roce_parse(data, end, &p);
  if (v < 0 || v >= RV_N) return XDP_PASS;
  glob(v);
  if (v != RV_OK) return XDP_PASS;
  struct roce_qp_stats *s = qp_stats(p.daddr, p.dqpn);
  if (!s) return XDP_PASS;
  __u64 now = bpf_ktime_get_ns();
  __u32 c = p.cls;
  if (c >= RC_N) return XDP_PASS;
  __sync_fetch_and_add(&s->pkts[c], 1);
  if (p.ack_req) __sync_fetch_and_add(&s->ack_req, 1);
  if (!s->first_ns) s->first_ns = now;
  s->last_ns = now;
  int first = 1;
  if (p.request) first = track_request(s, &p, now);
  else if (p.has_aeth) track_response(s, &p, now);
  if (first) {
    if (p.starts) __sync_fetch_and_add(&s->ops[c], 1);
    __sync_fetch_and_add(&s->bytes[c], p.payload);
  }
  return XDP_PASS;
}

SEC("xdp")
int fxh_roce(struct xdp_md *ctx) {
  return roce_account((void *)(long)ctx->data, (void *)(long)ctx->data_end);
}

/* does nothing: attached in its place, it separates the cost of having an XDP hook on the netdev
 * (veth switches to its NAPI receive path) from the cost of the telemetry itself */
SEC("xdp")
int fxh_roce_pass(struct xdp_md *ctx) {
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
