// SPDX-License-Identifier: GPL-2.0
/*
 * functions.bpf.c - serverless functions as eBPF programs.
 *
 * Each function is an XDP program run with BPF_PROG_RUN: its input is the packet payload
 * after a 32-byte struct fxh_frame (see fxh_frame.h), its result goes back into that header
 * (and, for the histogram, into the map fxh_hist). The same functions exist as ordinary C
 * fixtures (wasm-fixtures/src/{noop,fnv1a,classify,histogram}.c); harness/variants/ebpf.ts
 * prints the numbers exactly as those programs do.
 *
 * Every loop is bounded by FXH_MAX_INPUT so the verifier can prove termination; that bound
 * is also the variant's input size limit.
 *
 * Program names start with fxh_ (the leak checks in test/ebpf.test.ts look for that prefix)
 * and stay within the kernel's 15-character object names.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "fxh_frame.h"

/* ----------------------------------------------------------------------------- helpers */

/* The frame header, or NULL when the packet is shorter than it. */
static __always_inline struct fxh_frame *frame_of(struct xdp_md *ctx, void **payload, void **end) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct fxh_frame *f = data;
  if ((void *)(f + 1) > data_end) return 0;
  *payload = (void *)(f + 1);
  *end = data_end;
  return f;
}

/* Checks f->len against the packet and the limit; on failure sets f->status. */
static __always_inline int frame_ok(struct fxh_frame *f, void *payload, void *end) {
  __u32 len = f->len;
  if (len > FXH_MAX_INPUT) {
    f->status = 2;
    return 0;
  }
  if ((long)(end - payload) < (long)len) {
    f->status = 1;
    return 0;
  }
  f->status = 0;
  return 1;
}

/* ----------------------------------------------------------------------------- noop */

/* noop: consume nothing, report "ok". r[0] = 1. */
SEC("xdp")
int fxh_noop(struct xdp_md *ctx) {
  void *p, *end;
  struct fxh_frame *f = frame_of(ctx, &p, &end);
  if (!f) return XDP_ABORTED;
  if (!frame_ok(f, p, end)) return XDP_PASS;
  f->r[0] = 1;
  return XDP_PASS;
}

/* ----------------------------------------------------------------------------- fnv1a */

/* FNV-1a 32 over the payload. r[0] = hash, r[1] = bytes hashed. */
SEC("xdp")
int fxh_fnv1a(struct xdp_md *ctx) {
  void *p, *end;
  struct fxh_frame *f = frame_of(ctx, &p, &end);
  if (!f) return XDP_ABORTED;
  if (!frame_ok(f, p, end)) return XDP_PASS;
  __u32 len = f->len;
  __u32 h = 2166136261u;
  __u8 *c = p;
  __u32 i;
  for (i = 0; i < FXH_MAX_INPUT; i++) {
    if (i >= len) break;
    if ((void *)(c + 1) > end) break;
    h ^= *c;
    h *= 16777619u;
    c++;
  }
  f->r[0] = h;
  f->r[1] = i;
  return XDP_PASS;
}

/* ----------------------------------------------------------------------------- classify */

/* Classes; names and verdicts are in the C fixture and the loader (CLASSIFY_NAMES). */
enum {
  C_SHORT = 1,      /* shorter than an Ethernet header */
  C_NON_IPV4 = 2,   /* ethertype (after at most one 802.1Q tag) is not IPv4; r[4] = ethertype */
  C_BAD_IPV4 = 3,   /* version/IHL/total length inconsistent or truncated */
  C_FRAGMENT = 4,   /* non-first IPv4 fragment: no L4 header */
  C_TCP = 5,
  C_ICMP = 6,
  C_OTHER_L4 = 7,
  C_BAD_UDP = 8,    /* UDP header truncated or length inconsistent */
  C_DNS = 9,        /* UDP dst port 53 */
  C_NTP = 10,       /* 123 */
  C_QUIC = 11,      /* 443 */
  C_VXLAN = 12,     /* 4789 */
  C_UDP_OTHER = 13,
};

static __always_inline __u16 be16(const __u8 *b) { return (__u16)((b[0] << 8) | b[1]); }
static __always_inline __u32 be32(const __u8 *b) {
  return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | (__u32)b[3];
}

/*
 * Parse Ethernet (+ one optional 802.1Q tag) / IPv4 / UDP from the payload and classify it.
 * r[0] = class, r[1] = IPv4 source, r[2] = destination (host order, valid for class >= 4),
 * r[3] = sport << 16 | dport (class >= 9), r[4] = ethertype (class 2) or IP protocol (class >= 4).
 */
SEC("xdp")
int fxh_classify(struct xdp_md *ctx) {
  void *p, *end;
  struct fxh_frame *f = frame_of(ctx, &p, &end);
  if (!f) return XDP_ABORTED;
  if (!frame_ok(f, p, end)) return XDP_PASS;
  __u32 len = f->len;
  __u8 *eth = p;
  f->r[0] = C_SHORT;
  if (len < 14 || (void *)(eth + 14) > end) return XDP_PASS;
  __u32 l3 = 14;
  __u16 type = be16(eth + 12);
  if (type == 0x8100) {
    if (len < 18 || (void *)(eth + 18) > end) return XDP_PASS;
    type = be16(eth + 16);
    l3 = 18;
  }
  if (type != 0x0800) {
    f->r[0] = C_NON_IPV4;
    f->r[4] = type;
    return XDP_PASS;
  }
  f->r[0] = C_BAD_IPV4;
  __u8 *ip = eth + l3;
  if (l3 + 20 > len || (void *)(ip + 20) > end) return XDP_PASS;
  __u32 ihl = ip[0] & 15;
  if ((ip[0] >> 4) != 4 || ihl < 5) return XDP_PASS;
  __u32 tot = be16(ip + 2);
  if (tot < ihl * 4 || l3 + tot > len) return XDP_PASS;
  f->r[1] = be32(ip + 12);
  f->r[2] = be32(ip + 16);
  f->r[4] = ip[9];
  if ((be16(ip + 6) & 0x1fff) != 0) {
    f->r[0] = C_FRAGMENT;
    return XDP_PASS;
  }
  if (ip[9] == 6) {
    f->r[0] = C_TCP;
    return XDP_PASS;
  }
  if (ip[9] == 1) {
    f->r[0] = C_ICMP;
    return XDP_PASS;
  }
  if (ip[9] != 17) {
    f->r[0] = C_OTHER_L4;
    return XDP_PASS;
  }
  f->r[0] = C_BAD_UDP;
  __u8 *udp = ip + ihl * 4; /* ihl <= 15: a bounded variable offset the verifier can track */
  if (ihl * 4 + 8 > tot || (void *)(udp + 8) > end) return XDP_PASS;
  __u32 ulen = be16(udp + 4);
  if (ulen < 8 || ihl * 4 + ulen > tot) return XDP_PASS;
  __u32 sport = be16(udp), dport = be16(udp + 2);
  f->r[3] = (sport << 16) | dport;
  switch (dport) {
  case 53: f->r[0] = C_DNS; break;
  case 123: f->r[0] = C_NTP; break;
  case 443: f->r[0] = C_QUIC; break;
  case 4789: f->r[0] = C_VXLAN; break;
  default: f->r[0] = C_UDP_OTHER; break;
  }
  return XDP_PASS;
}

/* ----------------------------------------------------------------------------- histogram */

struct fxh_hist_value {
  __u32 count[256];
};

/* One entry: the byte-value histogram of the last invocation (the program zeroes it first).
 * Invocations of one loaded object must not overlap; BPF_PROG_RUN from one thread never does. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct fxh_hist_value);
} fxh_hist SEC(".maps");

/* Byte-value histogram of the payload into fxh_hist[0]. r[0] = bytes counted, r[1] = distinct values. */
SEC("xdp")
int fxh_histogram(struct xdp_md *ctx) {
  void *p, *end;
  struct fxh_frame *f = frame_of(ctx, &p, &end);
  if (!f) return XDP_ABORTED;
  if (!frame_ok(f, p, end)) return XDP_PASS;
  __u32 zero = 0;
  struct fxh_hist_value *h = bpf_map_lookup_elem(&fxh_hist, &zero);
  if (!h) {
    f->status = 3;
    return XDP_PASS;
  }
  for (int b = 0; b < 256; b++) h->count[b] = 0;
  __u32 len = f->len;
  __u8 *c = p;
  __u32 i, distinct = 0;
  for (i = 0; i < FXH_MAX_INPUT; i++) {
    if (i >= len) break;
    if ((void *)(c + 1) > end) break;
    __u8 v = *c;
    if (h->count[v]++ == 0) distinct++;
    c++;
  }
  f->r[0] = i;
  f->r[1] = distinct;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
