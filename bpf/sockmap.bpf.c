// SPDX-License-Identifier: GPL-2.0
/*
 * sockmap.bpf.c - the platform's local fast path between TCP sockets (loader: harness/bpf/sockmap.ts).
 *
 * fxh_sockops (sock_ops, attached to the platform's cgroup): when an IPv4 loopback TCP connection
 *   of a process in that cgroup is established (either end), its socket goes into the SOCKHASH
 *   fxh_sockhash under the key (local ip, remote ip, local port, remote port).
 * fxh_skmsg (sk_msg, attached to fxh_sockhash): runs on every sendmsg of a socket in the map and
 *   redirects the message to the ingress queue of the peer socket (the key with both ends
 *   swapped), so the bytes never pass through the TCP/IP stack. When the peer is not in the map
 *   (its end was established outside the cgroup), the message goes the normal way (SK_PASS).
 * fxh_splice (hash, written by the gateway through harness/bpf/splice-map.ts): sender key -> key of
 *   the socket that receives instead of the peer. The gateway joins a client's connection and a
 *   dedicated executor connection this way (a proxy splice): the client's requests land in the
 *   executor's socket and the answers in the client's, and the gateway process never wakes up for
 *   them. A splice whose target is gone falls back to the peer (the gateway then relays).
 *
 * fxh_skstat counts per CPU: [0] runs, [1] redirected (to the peer or spliced), [2] passed (no
 * peer), [3] bytes, [4] sockets inserted, [5] spliced (of [1]), [6] bytes spliced (of [3]). The proof of the fast path is the kernel's own run_cnt of fxh_skmsg
 * (kernel.bpf_stats_enabled); these counters say how many of those runs were redirects.
 *
 * Names start with fxh_ (leak checks look for it) and stay within 15 characters.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif

struct fxh_sock_key {
  __u32 sip; /* local IPv4, network order */
  __u32 dip; /* remote IPv4, network order */
  __u32 sport; /* local port, host order */
  __u32 dport; /* remote port, host order */
};

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 65536);
  __type(key, struct fxh_sock_key);
  __type(value, __u64);
} fxh_sockhash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct fxh_sock_key);
  __type(value, struct fxh_sock_key);
} fxh_splice SEC(".maps");

enum { ST_RUNS, ST_REDIRECTED, ST_PASSED, ST_BYTES, ST_INSERTED, ST_SPLICED, ST_SPLICED_BYTES, ST_N };

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ST_N);
  __type(key, __u32);
  __type(value, __u64);
} fxh_skstat SEC(".maps");

static __always_inline void bump(__u32 i, __u64 by) {
  __u64 *v = bpf_map_lookup_elem(&fxh_skstat, &i);
  if (v) *v += by;
}

/* remote_port arrives in network order, in the upper 16 bits of the u32 on little-endian
 * kernels (the lower 16 on others); local_port in host order. */
static __always_inline __u32 remote_port_host(__u32 rp) {
  __u16 be = rp > 0xffff ? (__u16)(rp >> 16) : (__u16)rp;
  return bpf_ntohs(be);
}

static __always_inline int loopback(__u32 ip_be) {
  return (bpf_ntohl(ip_be) >> 24) == 127;
}

SEC("sockops")
int fxh_sockops(struct bpf_sock_ops *skops) {
  if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) return 1;
  if (skops->family != AF_INET) return 1;
  if (!loopback(skops->local_ip4) || !loopback(skops->remote_ip4)) return 1;
  struct fxh_sock_key key = {
    .sip = skops->local_ip4,
    .dip = skops->remote_ip4,
    .sport = skops->local_port,
    .dport = remote_port_host(skops->remote_port),
  };
  if (bpf_sock_hash_update(skops, &fxh_sockhash, &key, BPF_ANY) == 0) bump(ST_INSERTED, 1);
  return 1;
}

SEC("sk_msg")
int fxh_skmsg(struct sk_msg_md *msg) {
  bump(ST_RUNS, 1);
  bump(ST_BYTES, msg->size);
  if (msg->family != AF_INET) {
    bump(ST_PASSED, 1);
    return SK_PASS;
  }
  struct fxh_sock_key self = {
    .sip = msg->local_ip4,
    .dip = msg->remote_ip4,
    .sport = msg->local_port,
    .dport = remote_port_host(msg->remote_port),
  };
  struct fxh_sock_key *joined = bpf_map_lookup_elem(&fxh_splice, &self);
  if (joined) {
    struct fxh_sock_key to = *joined;
    if (bpf_msg_redirect_hash(msg, &fxh_sockhash, &to, BPF_F_INGRESS) == SK_PASS) {
      bump(ST_REDIRECTED, 1);
      bump(ST_SPLICED, 1);
      bump(ST_SPLICED_BYTES, msg->size);
      return SK_PASS;
    }
  }
  /* the peer's key: its local end is our remote end */
  struct fxh_sock_key peer = {
    .sip = msg->remote_ip4,
    .dip = msg->local_ip4,
    .sport = remote_port_host(msg->remote_port),
    .dport = msg->local_port,
  };
  if (bpf_msg_redirect_hash(msg, &fxh_sockhash, &peer, BPF_F_INGRESS) == SK_PASS) {
    bump(ST_REDIRECTED, 1);
    return SK_PASS;
  }
  bump(ST_PASSED, 1);
  return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
