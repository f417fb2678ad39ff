// SPDX-License-Identifier: GPL-2.0
/*
 * counter.bpf.c - the TEST-ONLY counter function as an eBPF program (see wasm-fixtures/src/counter.c):
 * r[0] = calls served by this loaded object, this one included. Its count lives in a map, which a
 * new load (cold) creates afresh and a loaded object (warm) keeps. An object of its own, so the
 * measured functions (functions.bpf.c) do not create its map on every load.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "fxh_frame.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} fxh_calls SEC(".maps");

SEC("xdp")
int fxh_counter(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct fxh_frame *f = data;
  if ((void *)(f + 1) > data_end) return XDP_ABORTED;
  __u32 zero = 0;
  __u64 *n = bpf_map_lookup_elem(&fxh_calls, &zero);
  if (!n) {
    f->status = 3;
    return XDP_PASS;
  }
  f->status = 0;
  f->r[0] = (__u32)__sync_add_and_fetch(n, 1);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
