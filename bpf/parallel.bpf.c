// SPDX-License-Identifier: GPL-2.0
/*
 * parallel.bpf.c - the data-parallel kernels of wasm-fixtures/parallel/kernels.c as XDP programs,
 * run by BPF_PROG_RUN from one thread per slice of the work (harness/parallel/ebpf.ts).
 *
 * The input lives in fxh_par_data, an array map of 4 KiB chunks read as one flat uint32 (or byte)
 * space; the packet carries only the job: which slice, where each array starts. bpf_loop walks the
 * chunks (or rows); the partials go to fxh_par_part, a per-CPU array indexed by thread slot, so two
 * threads never write one value even when the threads outnumber the CPUs (BPF_PROG_RUN of XDP only
 * disables migration, not preemption). matmul and spmv write their output rows into fxh_par_data.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CHUNK_U32 1024
#define CHUNKS 4096 /* 16 MiB of input */
#define SLOTS 64
#define MAX_NNZ 64

struct chunk { __u32 v[CHUNK_U32]; };
struct part { __u64 sum; __u32 bins[256]; };

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, CHUNKS);
  __type(key, __u32);
  __type(value, struct chunk);
} fxh_par_data SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SLOTS);
  __type(key, __u32);
  __type(value, struct part);
} fxh_par_part SEC(".maps");

/* the job, at the start of the packet; offsets are in uint32 elements of the flat space */
struct job {
  __u32 lo, hi, slot, n;
  __u32 off[5];
  __u32 pad[7];
};

static __always_inline __u32 *at(__u32 i) {
  __u32 c = i / CHUNK_U32;
  struct chunk *ch = bpf_map_lookup_elem(&fxh_par_data, &c);
  if (!ch) return 0;
  return &ch->v[i & (CHUNK_U32 - 1)];
}

static __always_inline struct job *job_of(struct xdp_md *ctx) {
  struct job *j = (void *)(long)ctx->data;
  if ((void *)(j + 1) > (void *)(long)ctx->data_end) return 0;
  return j;
}

/* ------------------------------------------------------------ reduce and histogram: chunk walks
 * A slice is whole chunks [lo, hi) of the array (the host zero-pads the last chunk and, for the
 * histogram, takes the padding's count off bin 0): a constant-trip inner loop is all the verifier
 * accepts here. With element bounds (for j = from; j < to) it walks every possible start and end and
 * gives up after 1,000,000 instructions ("BPF program is too large").
 */
struct walk {
  __u32 lo, base;
  __u64 sum;
  struct part *p;
};

static long reduce_chunk(__u32 idx, struct walk *w) {
  __u32 c = w->base + w->lo + idx;
  struct chunk *ch = bpf_map_lookup_elem(&fxh_par_data, &c);
  if (!ch) return 1;
  __u64 s = 0;
  for (__u32 j = 0; j < CHUNK_U32; j++) s += ch->v[j];
  w->sum += s;
  return 0;
}

SEC("xdp")
int fxh_par_reduce(struct xdp_md *ctx) {
  struct job *j = job_of(ctx);
  if (!j || j->hi <= j->lo) return XDP_ABORTED;
  __u32 slot = j->slot;
  struct part *p = bpf_map_lookup_elem(&fxh_par_part, &slot);
  if (!p) return XDP_ABORTED;
  struct walk w = { .lo = j->lo, .base = j->off[0] / CHUNK_U32 };
  bpf_loop(j->hi - j->lo, reduce_chunk, &w, 0);
  p->sum = w.sum;
  return XDP_PASS;
}

static long hist_chunk(__u32 idx, struct walk *w) {
  __u32 c = w->base + w->lo + idx;
  struct chunk *ch = bpf_map_lookup_elem(&fxh_par_data, &c);
  struct part *p = w->p;
  if (!ch || !p) return 1;
  const __u8 *b = (const __u8 *)ch->v;
  for (__u32 k = 0; k < CHUNK_U32 * 4; k++) p->bins[b[k]]++;
  return 0;
}

SEC("xdp")
int fxh_par_hist(struct xdp_md *ctx) {
  struct job *j = job_of(ctx);
  if (!j || j->hi <= j->lo) return XDP_ABORTED;
  __u32 slot = j->slot;
  struct part *p = bpf_map_lookup_elem(&fxh_par_part, &slot);
  if (!p) return XDP_ABORTED;
  struct walk w = { .lo = j->lo, .base = j->off[0] / CHUNK_U32, .p = p };
  bpf_loop(j->hi - j->lo, hist_chunk, &w, 0);
  return XDP_PASS;
}

/* ------------------------------------------------------------ spmv: rows, irregular gathers */
struct rows { __u32 lo; __u32 off[5]; };

static long spmv_row(__u32 idx, struct rows *w) {
  __u32 r = w->lo + idx;
  __u32 *a = at(w->off[0] + r), *b = at(w->off[0] + r + 1);
  if (!a || !b) return 1;
  __u32 k0 = *a, k1 = *b, s = 0;
  for (__u32 t = 0; t < MAX_NNZ; t++) {
    __u32 k = k0 + t;
    if (k >= k1) break;
    __u32 *col = at(w->off[1] + k), *val = at(w->off[2] + k);
    if (!col || !val) return 1;
    __u32 *x = at(w->off[3] + *col);
    if (!x) return 1;
    s += *val * *x;
  }
  __u32 *y = at(w->off[4] + r);
  if (!y) return 1;
  *y = s;
  return 0;
}

SEC("xdp")
int fxh_par_spmv(struct xdp_md *ctx) {
  struct job *j = job_of(ctx);
  if (!j || j->hi <= j->lo) return XDP_ABORTED;
  struct rows w = { .lo = j->lo, .off = { j->off[0], j->off[1], j->off[2], j->off[3], j->off[4] } };
  bpf_loop(j->hi - j->lo, spmv_row, &w, 0);
  return XDP_PASS;
}

/* ------------------------------------------------------------ matmul: rows x k x j, nested bpf_loop */
struct mm { __u32 n, i, k, a, A, B, C; };

static long mm_j(__u32 jdx, struct mm *m) {
  __u32 *b = at(m->B + m->k * m->n + jdx), *c = at(m->C + m->i * m->n + jdx);
  if (!b || !c) return 1;
  *c += m->a * *b;
  return 0;
}

static long mm_k(__u32 k, struct mm *m) {
  __u32 *a = at(m->A + m->i * m->n + k);
  if (!a) return 1;
  m->k = k;
  m->a = *a;
  bpf_loop(m->n, mm_j, m, 0);
  return 0;
}

static long mm_zero(__u32 jdx, struct mm *m) {
  __u32 *c = at(m->C + m->i * m->n + jdx);
  if (!c) return 1;
  *c = 0;
  return 0;
}

static long mm_row(__u32 idx, struct mm *m) {
  m->i += idx ? 1 : 0;
  bpf_loop(m->n, mm_zero, m, 0);
  bpf_loop(m->n, mm_k, m, 0);
  return 0;
}

SEC("xdp")
int fxh_par_matmul(struct xdp_md *ctx) {
  struct job *j = job_of(ctx);
  if (!j || j->hi <= j->lo) return XDP_ABORTED;
  struct mm m = { .n = j->n, .i = j->lo, .A = j->off[0], .B = j->off[1], .C = j->off[2] };
  bpf_loop(j->hi - j->lo, mm_row, &m, 0);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
