// Native runner of kernels.c with pthreads:
//   parallel-native <reduce|histogram|matmul|spmv> <size> <threads> <reps> <seed>
// Generates the input with the same xorshift32 as harness/parallel/kernels.ts, starts <threads>
// threads once, then per rep releases them through a barrier and waits for them at a second one
// (the time between is the rep's). Prints "ns <t>" per rep, then "hash <fnv1a32 of the output>".
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"

enum { REDUCE, HISTOGRAM, MATMUL, SPMV };
#define NNZ_PER_ROW 16

static int kernel, threads;
static u32 size, units;
static u32 *a, *bm, *cm, *rp, *col, *val, *x, *y;
static u8 *bytes;
static u64 *sums;  // per thread
static u32 *bins;  // per thread x 256
static pthread_barrier_t start, done;
static volatile int stop;

static u32 rng_state;
static u32 rng(void) {
  u32 v = rng_state;
  v ^= v << 13;
  v ^= v >> 17;
  v ^= v << 5;
  return rng_state = v;
}

static void *xalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) {
    fprintf(stderr, "parallel-native: out of memory (%zu bytes)\n", n);
    exit(3);
  }
  return p;
}

static void work(int t) {
  u32 lo = (u32)((u64)units * t / threads), hi = (u32)((u64)units * (t + 1) / threads);
  switch (kernel) {
    case REDUCE: sums[t] = 0; k_reduce(a, lo, hi, &sums[t]); break;
    case HISTOGRAM: memset(bins + 256 * t, 0, 256 * 4); k_histogram(bytes, lo, hi, bins + 256 * t); break;
    case MATMUL: k_matmul(a, bm, cm, size, lo, hi); break;
    case SPMV: k_spmv(rp, col, val, x, y, lo, hi); break;
  }
}

static void *thread_main(void *arg) {
  int t = (int)(long)arg;
  for (;;) {
    pthread_barrier_wait(&start);
    if (stop) return NULL;
    work(t);
    pthread_barrier_wait(&done);
  }
}

static u32 fnv(u32 h, const void *p, size_t n) {
  const u8 *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: parallel-native <reduce|histogram|matmul|spmv> <size> <threads> <reps> <seed>\n");
    return 2;
  }
  const char *names[] = {"reduce", "histogram", "matmul", "spmv"};
  kernel = -1;
  for (int i = 0; i < 4; i++) if (!strcmp(argv[1], names[i])) kernel = i;
  long sz = atol(argv[2]), th = atol(argv[3]), reps = atol(argv[4]);
  if (kernel < 0 || sz < 1 || sz > (1L << 30) || th < 1 || th > 1024 || reps < 1) {
    fprintf(stderr, "parallel-native: bad arguments (kernel %s, size %s, threads %s, reps %s)\n", argv[1], argv[2], argv[3], argv[4]);
    return 2;
  }
  size = (u32)sz;
  threads = (int)th;
  rng_state = (u32)strtoul(argv[5], NULL, 10);
  if (!rng_state) rng_state = 1;
  units = size;
  switch (kernel) {
    case REDUCE:
      a = xalloc((size_t)size * 4);
      for (u32 i = 0; i < size; i++) a[i] = rng();
      break;
    case HISTOGRAM:
      bytes = xalloc(size);
      for (u32 i = 0; i < size; i++) bytes[i] = (u8)(rng() >> 24);
      break;
    case MATMUL:
      a = xalloc((size_t)size * size * 4);
      bm = xalloc((size_t)size * size * 4);
      cm = xalloc((size_t)size * size * 4);
      for (u64 i = 0; i < (u64)size * size; i++) a[i] = rng();
      for (u64 i = 0; i < (u64)size * size; i++) bm[i] = rng();
      break;
    case SPMV:
      rp = xalloc(((size_t)size + 1) * 4);
      col = xalloc((size_t)size * NNZ_PER_ROW * 4);
      val = xalloc((size_t)size * NNZ_PER_ROW * 4);
      x = xalloc((size_t)size * 4);
      y = xalloc((size_t)size * 4);
      for (u32 i = 0; i < size; i++) x[i] = rng();
      for (u32 r = 0; r <= size; r++) rp[r] = r * NNZ_PER_ROW;
      for (u64 k = 0; k < (u64)size * NNZ_PER_ROW; k++) {
        col[k] = rng() % size;
        val[k] = rng();
      }
      break;
  }
  sums = xalloc(8 * (size_t)threads);
  bins = xalloc(256 * 4 * (size_t)threads);
  pthread_barrier_init(&start, NULL, threads + 1);
  pthread_barrier_init(&done, NULL, threads + 1);
  pthread_t *tids = xalloc(sizeof(pthread_t) * threads);
  for (int t = 0; t < threads; t++) {
    if (pthread_create(&tids[t], NULL, thread_main, (void *)(long)t)) {
      fprintf(stderr, "parallel-native: pthread_create failed at thread %d\n", t);
      return 3;
    }
  }
  for (long r = 0; r < reps; r++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_barrier_wait(&start);
    pthread_barrier_wait(&done);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("ns %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
  }
  stop = 1;
  pthread_barrier_wait(&start);
  for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  u32 h = 2166136261u;
  switch (kernel) {
    case REDUCE: {
      u64 s = 0;
      for (int t = 0; t < threads; t++) s += sums[t];
      h = fnv(h, &s, 8);
      break;
    }
    case HISTOGRAM: {
      u32 total[256] = {0};
      for (int t = 0; t < threads; t++) for (int i = 0; i < 256; i++) total[i] += bins[256 * t + i];
      h = fnv(h, total, sizeof total);
      break;
    }
    case MATMUL: h = fnv(h, cm, (size_t)size * size * 4); break;
    case SPMV: h = fnv(h, y, (size_t)size * 4); break;
  }
  printf("hash %08x\n", h);
  return 0;
}
