// The kernels driven from inside the module, wasi-threads style: k_parallel spawns threads through
// the host's wasi "thread-spawn" import, does slice 0 itself, and waits on a counter in the shared
// memory. Each spawned thread enters at wasi_thread_start(tid, arg) (the wasi-threads ABI), runs its
// slice and counts down. Built with --shared-memory together with kernels.c (build.mjs).
#include "kernels.h"

__attribute__((import_module("wasi"), import_name("thread-spawn"))) int thread_spawn(void *arg);

// one slice: which kernel (0 reduce, 1 histogram, 2 matmul, 3 spmv) and its arguments; `left` counts
// the threads still running
struct job {
  u32 fn;
  u32 a[7];
  int *left;
};

static void run_slice(struct job *j) {
  const u32 *a = j->a;
  switch (j->fn) {
    case 0: k_reduce((const u32 *)a[0], a[1], a[2], (u64 *)a[3]); break;
    case 1: k_histogram((const u8 *)a[0], a[1], a[2], (u32 *)a[3]); break;
    case 2: k_matmul((const u32 *)a[0], (const u32 *)a[1], (u32 *)a[2], a[3], a[4], a[5]); break;
    case 3: k_spmv((const u32 *)a[0], (const u32 *)a[1], (const u32 *)a[2], (const u32 *)a[3], (u32 *)a[4], a[5], a[6]); break;
    default: __builtin_trap();
  }
}

static void done(int *left) {
  if (__atomic_sub_fetch(left, 1, __ATOMIC_SEQ_CST) == 0) __builtin_wasm_memory_atomic_notify(left, 1);
}

__attribute__((export_name("wasi_thread_start"))) void wasi_thread_start(int tid, struct job *j) {
  (void)tid;
  run_slice(j);
  done(j->left);
}

// jobs[0..threads): 0 when every slice is done; -1 when a thread could not be spawned (the ones
// spawned before are still waited for); -2 after timeout_ns without the last slice
__attribute__((export_name("k_parallel"))) int k_parallel(struct job *jobs, u32 threads, int *left, long long timeout_ns) {
  int rc = 0;
  *left = (int)threads;
  for (u32 t = 1; t < threads; t++) {
    if (thread_spawn(&jobs[t]) < 0) {
      __atomic_sub_fetch(left, (int)(threads - t), __ATOMIC_SEQ_CST);
      rc = -1;
      break;
    }
  }
  if (rc == 0) {
    run_slice(&jobs[0]);
    __atomic_sub_fetch(left, 1, __ATOMIC_SEQ_CST);
  } else {
    __atomic_sub_fetch(left, 1, __ATOMIC_SEQ_CST);
  }
  for (int v; (v = __atomic_load_n(left, __ATOMIC_SEQ_CST)) > 0;) {
    if (__builtin_wasm_memory_atomic_wait32(left, v, timeout_ns) == 2) return -2;
  }
  return rc;
}
