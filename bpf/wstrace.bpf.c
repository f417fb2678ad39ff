// SPDX-License-Identifier: GPL-2.0
/*
 * wstrace.bpf.c - the working set of a forked WASM instance, from DAMON's access reports.
 *
 * A restored instance's pages are already populated, so the first call's reads raise no page fault
 * to trace. DAMON (physical-address operations, paddr) checks the pages' accessed bits instead:
 * user space gives it one region per physical page of the instance's memory; every aggregation
 * interval DAMON reports each region with the number of samples that found it accessed, on the
 * tracepoint damon:damon_aggregated. This program keeps, per region start, the region's end and
 * the sum of its accesses (fxh_ws_acc), and counts the reports (fxh_ws_stats: 0 reports, 1 reports
 * with accesses). Only one kdamond runs (user space refuses to start when another exists).
 *
 * A classic tracepoint (the context below follows
 * /sys/kernel/tracing/events/damon/damon_aggregated/format), so it needs tracefs.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct damon_aggregated_ctx {
  __u64 common;
  __u64 target_id;
  __u32 nr_regions;
  __u32 pad;
  __u64 start;
  __u64 end;
  __u32 nr_accesses;
  __u32 age;
};

struct region_acc {
  __u64 end;
  __u64 accesses;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct region_acc);
} fxh_ws_acc SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} fxh_ws_stats SEC(".maps");

SEC("tracepoint/damon/damon_aggregated")
int fxh_ws_damon(struct damon_aggregated_ctx *ctx) {
  __u32 k = 0;
  __u64 *n = bpf_map_lookup_elem(&fxh_ws_stats, &k);
  if (n) __sync_fetch_and_add(n, 1);
  if (ctx->nr_accesses == 0) return 0;
  k = 1;
  n = bpf_map_lookup_elem(&fxh_ws_stats, &k);
  if (n) __sync_fetch_and_add(n, 1);
  __u64 start = ctx->start;
  struct region_acc *a = bpf_map_lookup_elem(&fxh_ws_acc, &start);
  if (a) {
    if (ctx->end > a->end) a->end = ctx->end;
    __sync_fetch_and_add(&a->accesses, ctx->nr_accesses);
  } else {
    struct region_acc v = {.end = ctx->end, .accesses = ctx->nr_accesses};
    bpf_map_update_elem(&fxh_ws_acc, &start, &v, BPF_ANY);
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
