/*
 * matmul: input "n seed". Fill A then B (row-major n x n uint32) from the shared LCG
 * seeded with `seed`, compute C = A*B with uint32 wrap-around arithmetic and print
 *   "n=<n> sum=<sum of C as uint64> xor=<xor of C>\n"
 * Exit status 2 on malformed input.
 */
#include "../support/fx_common.h"

int main(void) {
  size_t len;
  unsigned char *in = fx_read_all(&len);
  if (!in) { fputs("matmul: cannot read input\n", stderr); return 1; }
  uint32_t args[2];
  int nargs = fx_parse_u32s(in, args, 2);
  free(in);
  if (nargs != 2 || args[0] == 0 || args[0] > 4096) {
    fputs("matmul: expected input \"n seed\" with 1 <= n <= 4096\n", stderr);
    return 2;
  }
  size_t n = args[0];
  uint32_t s = args[1];
  uint32_t *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b);
  uint32_t *c = calloc(n * n, sizeof *c);
  if (!a || !b || !c) {
    free(a); free(b); free(c);
    fputs("matmul: out of memory\n", stderr);
    return 1;
  }
  for (size_t i = 0; i < n * n; i++) a[i] = fx_lcg(&s);
  for (size_t i = 0; i < n * n; i++) b[i] = fx_lcg(&s);
  for (size_t i = 0; i < n; i++) {
    uint32_t *ci = c + i * n;
    for (size_t k = 0; k < n; k++) {
      uint32_t aik = a[i * n + k];
      const uint32_t *bk = b + k * n;
      for (size_t j = 0; j < n; j++) ci[j] += aik * bk[j];
    }
  }
  uint64_t sum = 0;
  uint32_t x = 0;
  for (size_t i = 0; i < n * n; i++) { sum += c[i]; x ^= c[i]; }
  free(a); free(b); free(c);
  printf("n=%u sum=%llu xor=%u\n", (unsigned)n, (unsigned long long)sum, (unsigned)x);
  return 0;
}
