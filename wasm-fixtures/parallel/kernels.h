// Types of kernels.c (freestanding: no libc headers, so it builds for bare wasm32).
#ifndef FXH_KERNELS_H
#define FXH_KERNELS_H
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

void k_reduce(const u32 *a, u32 lo, u32 hi, u64 *out);
void k_histogram(const u8 *b, u32 lo, u32 hi, u32 *bins);
void k_matmul(const u32 *A, const u32 *B, u32 *C, u32 n, u32 lo, u32 hi);
void k_spmv(const u32 *rp, const u32 *col, const u32 *val, const u32 *x, u32 *y, u32 lo, u32 hi);
#endif
