// SPDX-License-Identifier: GPL-2.0
/*
 * roce.h - the RoCEv2 packet parser shared by roce.bpf.c (telemetry) and roce-loss.bpf.c (loss
 * injection), and the layouts user space reads (harness/bpf/roce-layout.ts mirrors them; a test
 * checks both against packets it builds).
 *
 * Ethernet (one optional 802.1Q tag) / IPv4 (options allowed, no fragments) or IPv6 (no extension
 * headers) / UDP dport 4791 / BTH (12 B) / the opcode's extension headers / payload / pad / ICRC (4 B).
 * Every header boundary is bounds-checked; a packet cut short at any of them, or whose UDP length
 * does not fit the headers its opcode needs, is malformed: counted by reason, never attributed to a QP.
 */
#ifndef FXH_ROCE_H
#define FXH_ROCE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ROCE_UDP_PORT 4791
#define BTH_LEN 12
#define ICRC_LEN 4

/* opcode classes: user space indexes the per-QP arrays with these */
enum roce_class { RC_SEND, RC_WRITE, RC_READ_REQ, RC_READ_RESP, RC_ACK, RC_ATOMIC, RC_ATOMIC_ACK, RC_CNP, RC_N };

/* outcome of parsing; > 0: not a RoCEv2 packet or malformed (the global counter to bump) */
enum roce_verdict {
  RV_OK = 0,
  RV_NOT_ROCE,      /* not IP/UDP/4791: passed untouched */
  RV_TRUNC_ETH,     /* shorter than an Ethernet header (or its VLAN tag) */
  RV_TRUNC_IP,      /* cut inside the IPv4/IPv6 header, or IHL < 5 */
  RV_IP_FRAGMENT,   /* a fragment of a UDP/4791 datagram: its BTH cannot be trusted */
  RV_TRUNC_UDP,     /* cut inside the UDP header */
  RV_TRUNC_BTH,     /* cut inside the base transport header */
  RV_BAD_OPCODE,    /* reserved or unsupported opcode (RD, XRC, vendor) */
  RV_TRUNC_EXT,     /* cut inside the opcode's extension headers (RETH, AETH, ...) */
  RV_BAD_LENGTH,    /* UDP length beyond the packet, or too short for headers + pad + ICRC */
  RV_N,
};

struct roce_pkt {
  __u32 saddr[4]; /* IPv6, or IPv4 mapped (::ffff:a.b.c.d), network order */
  __u32 daddr[4];
  __u32 dqpn;
  __u32 psn;
  __u32 payload; /* bytes after the extension headers, before pad and ICRC */
  __u32 dma_len; /* RETH DMA length (write first/only, read request), else 0 */
  __u8 opcode;
  __u8 cls;      /* enum roce_class */
  __u8 ack_req;
  __u8 starts;   /* first or only packet of a message: counts as one operation */
  __u8 has_aeth;
  __u8 syndrome; /* AETH syndrome */
  __u8 request;  /* PSN-tracked at the destination QP (send, write, read request, atomic) */
  __u8 last;     /* last or only packet of a request message */
};

/* header bytes after the BTH, class and flags of an opcode; -1 when not supported */
static __always_inline int roce_opcode_info(__u8 op, struct roce_pkt *p) {
  __u8 tr = op >> 5, lo = op & 0x1f;
  p->starts = 0;
  p->request = 0;
  p->last = 0;
  if (op == 0x81) { /* CNP: BTH + 16 reserved bytes */
    p->cls = RC_CNP;
    p->starts = 1;
    return 16;
  }
  if (tr == 3) { /* UD: DETH (8), + ImmDt for SEND_ONLY_IMM */
    if (lo != 4 && lo != 5) return -1;
    p->cls = RC_SEND;
    p->starts = p->last = 1;
    return lo == 5 ? 12 : 8;
  }
  if (tr != 0 && tr != 1) return -1; /* RD, XRC, CNP variants, vendor */
  if (tr == 1 && lo > 0x0b) return -1;  /* UC has sends and writes only */
  switch (lo) {
  case 0x00: p->cls = RC_SEND; p->starts = 1; p->request = 1; return 0;
  case 0x01: p->cls = RC_SEND; p->request = 1; return 0;
  case 0x02: p->cls = RC_SEND; p->request = p->last = 1; return 0;
  case 0x03: p->cls = RC_SEND; p->request = p->last = 1; return 4;
  case 0x04: p->cls = RC_SEND; p->starts = p->request = p->last = 1; return 0;
  case 0x05: p->cls = RC_SEND; p->starts = p->request = p->last = 1; return 4;
  case 0x06: p->cls = RC_WRITE; p->starts = p->request = 1; return 16;
  case 0x07: p->cls = RC_WRITE; p->request = 1; return 0;
  case 0x08: p->cls = RC_WRITE; p->request = p->last = 1; return 0;
  case 0x09: p->cls = RC_WRITE; p->request = p->last = 1; return 4;
  case 0x0a: p->cls = RC_WRITE; p->starts = p->request = p->last = 1; return 16;
  case 0x0b: p->cls = RC_WRITE; p->starts = p->request = p->last = 1; return 20;
  case 0x0c: p->cls = RC_READ_REQ; p->starts = p->request = p->last = 1; return 16;
  case 0x0d: p->cls = RC_READ_RESP; p->starts = 1; return 4;
  case 0x0e: p->cls = RC_READ_RESP; return 0;
  case 0x0f: p->cls = RC_READ_RESP; return 4;
  case 0x10: p->cls = RC_READ_RESP; p->starts = 1; return 4;
  case 0x11: p->cls = RC_ACK; p->starts = 1; return 4;
  case 0x12: p->cls = RC_ATOMIC_ACK; p->starts = 1; return 12;
  case 0x13:
  case 0x14: p->cls = RC_ATOMIC; p->starts = p->request = p->last = 1; return 28;
  case 0x16: p->cls = RC_SEND; p->request = p->last = 1; return 4;
  case 0x17: p->cls = RC_SEND; p->starts = p->request = p->last = 1; return 4;
  }
  return -1;
}

static __always_inline int roce_has_aeth(__u8 op) {
  __u8 lo = op & 0x1f;
  return (op >> 5) == 0 && (lo == 0x0d || lo == 0x0f || lo == 0x10 || lo == 0x11 || lo == 0x12);
}

static __always_inline int roce_has_reth(__u8 op) {
  __u8 lo = op & 0x1f, tr = op >> 5;
  return (tr == 0 || tr == 1) && (lo == 0x06 || lo == 0x0a || lo == 0x0b || lo == 0x0c);
}

/* Parses [data, end) into *p. Returns enum roce_verdict. */
static __always_inline int roce_parse(void *data, void *end, struct roce_pkt *p) {
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return RV_TRUNC_ETH;
  void *l3 = eth + 1;
  __u16 proto = eth->h_proto;
  if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
    if (l3 + 4 > end) return RV_TRUNC_ETH;
    proto = *(__u16 *)(l3 + 2);
    l3 += 4;
  }
  struct udphdr *udp;
  __u32 ip_room; /* bytes from the UDP header to the end of the IP datagram */
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = l3;
    if ((void *)(ip + 1) > end) return RV_TRUNC_IP;
    if (ip->version != 4 || ip->ihl < 5) return RV_TRUNC_IP;
    if (ip->protocol != IPPROTO_UDP) return RV_NOT_ROCE;
    __u32 ihl = ip->ihl * 4;
    __u32 tot = bpf_ntohs(ip->tot_len);
    if (tot < ihl) return RV_BAD_LENGTH;
    ip_room = tot - ihl;
    udp = l3 + ihl;
    if ((void *)(udp + 1) > end) return RV_TRUNC_UDP;
    if (udp->dest != bpf_htons(ROCE_UDP_PORT)) return RV_NOT_ROCE;
    if (ip->frag_off & bpf_htons(0x3fff)) return RV_IP_FRAGMENT;
    p->saddr[0] = p->saddr[1] = p->daddr[0] = p->daddr[1] = 0;
    p->saddr[2] = p->daddr[2] = bpf_htonl(0xffff);
    p->saddr[3] = ip->saddr;
    p->daddr[3] = ip->daddr;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = l3;
    if ((void *)(ip6 + 1) > end) return RV_TRUNC_IP;
    if (ip6->nexthdr != IPPROTO_UDP) return RV_NOT_ROCE;
    ip_room = bpf_ntohs(ip6->payload_len);
    udp = (void *)(ip6 + 1);
    if ((void *)(udp + 1) > end) return RV_TRUNC_UDP;
    if (udp->dest != bpf_htons(ROCE_UDP_PORT)) return RV_NOT_ROCE;
    __builtin_memcpy(p->saddr, &ip6->saddr, 16);
    __builtin_memcpy(p->daddr, &ip6->daddr, 16);
  } else {
    return RV_NOT_ROCE;
  }
  __u8 *bth = (void *)(udp + 1);
#ifndef FXH_ROCE_UNCHECKED /* tests build without it: the verifier must refuse, and say why */
  if ((void *)(bth + BTH_LEN) > end) return RV_TRUNC_BTH;
#endif
  p->opcode = bth[0];
  __u32 pad = (bth[1] >> 4) & 3;
  p->dqpn = ((__u32)bth[5] << 16) | ((__u32)bth[6] << 8) | bth[7];
  p->ack_req = bth[8] >> 7;
  p->psn = ((__u32)bth[9] << 16) | ((__u32)bth[10] << 8) | bth[11];
  int ext = roce_opcode_info(p->opcode, p);
  if (ext < 0) return RV_BAD_OPCODE;
  __u8 *eh = bth + BTH_LEN;
  /* ext <= 28: a constant bound lets the verifier accept the variable-length check */
  if (ext > 28 || (void *)(eh + ext) > end) return RV_TRUNC_EXT;
  p->dma_len = 0;
  p->has_aeth = 0;
  p->syndrome = 0;
  if (roce_has_reth(p->opcode)) {
    if ((void *)(eh + 16) > end) return RV_TRUNC_EXT;
    p->dma_len = ((__u32)eh[12] << 24) | ((__u32)eh[13] << 16) | ((__u32)eh[14] << 8) | eh[15];
  }
  if (roce_has_aeth(p->opcode)) {
    if ((void *)(eh + 4) > end) return RV_TRUNC_EXT;
    p->has_aeth = 1;
    p->syndrome = eh[0];
  }
  __u32 ulen = bpf_ntohs(udp->len);
  __u32 room = (__u32)(end - (void *)udp);
  __u32 hdrs = sizeof(*udp) + BTH_LEN + ext + pad + ICRC_LEN;
  if (ulen > room || ulen > ip_room || ulen < hdrs) return RV_BAD_LENGTH;
  p->payload = ulen - hdrs;
  return RV_OK;
}

/* (a - b) mod 2^24 as a signed distance in (-2^23, 2^23] */
static __always_inline __s32 psn_diff(__u32 a, __u32 b) {
  __s32 d = (__s32)((a - b) & 0xffffff);
  return d > 0x800000 ? d - 0x1000000 : d;
}

#endif
