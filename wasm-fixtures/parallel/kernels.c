// Data-parallel kernels, one range of the work per call, so a host splits the work over threads
// and reduces the partials itself. Freestanding (no libc): the same file is built for native
// (with parallel_native.c), wasm32 scalar, wasm32 SIMD128 and wasm32 with a shared memory.
// All arithmetic is uint32/uint64 with wrap-around, so every split gives bit-identical output.
#include "kernels.h"

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name))) name
#else
#define EXPORT(name) name
#endif

// sum of a[lo..hi), added to *out
void EXPORT(k_reduce)(const u32 *a, u32 lo, u32 hi, u64 *out) {
  u64 s = 0;
  for (u32 i = lo; i < hi; i++) s += a[i];
  *out += s;
}

// byte-value histogram of b[lo..hi), added to bins[256]
void EXPORT(k_histogram)(const u8 *b, u32 lo, u32 hi, u32 *bins) {
  for (u32 i = lo; i < hi; i++) bins[b[i]]++;
}

// rows lo..hi of C = A x B (n x n); i-k-j order so the inner loop is contiguous
void EXPORT(k_matmul)(const u32 *A, const u32 *B, u32 *C, u32 n, u32 lo, u32 hi) {
  for (u32 i = lo; i < hi; i++) {
    u32 *c = C + (u64)i * n;
    for (u32 j = 0; j < n; j++) c[j] = 0;
    for (u32 k = 0; k < n; k++) {
      const u32 a = A[(u64)i * n + k];
      const u32 *b = B + (u64)k * n;
      for (u32 j = 0; j < n; j++) c[j] += a * b[j];
    }
  }
}

// rows lo..hi of y = M x (CSR: rp row pointers, col column indices, val values): x[col[k]] is
// the irregular access
void EXPORT(k_spmv)(const u32 *rp, const u32 *col, const u32 *val, const u32 *x, u32 *y, u32 lo, u32 hi) {
  for (u32 r = lo; r < hi; r++) {
    u32 s = 0;
    for (u32 k = rp[r]; k < rp[r + 1]; k++) s += val[k] * x[col[k]];
    y[r] = s;
  }
}
