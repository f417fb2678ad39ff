/*
 * fx_common.h - small helpers shared by the built-in workloads in ../src.
 *
 * Header-only on purpose: every workload stays a single C translation unit that
 * builds unchanged for wasm32-wasi (reactor) and native x86-64.
 */
#ifndef FX_COMMON_H
#define FX_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read all of stdin into a malloc'd buffer (NUL-terminated, terminator not counted).
 * Returns NULL on allocation failure or read error. The caller frees it. */
__attribute__((unused)) static unsigned char *fx_read_all(size_t *out_len) {
  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap + 1);
  if (!buf) return NULL;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap * 2;
      unsigned char *nb = realloc(buf, ncap + 1);
      if (!nb) { free(buf); return NULL; }
      buf = nb;
      cap = ncap;
    }
    size_t n = fread(buf + len, 1, cap - len, stdin);
    len += n;
    if (n == 0) break;
  }
  if (ferror(stdin)) { free(buf); return NULL; }
  buf[len] = 0;
  *out_len = len;
  return buf;
}

/* Discard the rest of stdin (used by workloads that ignore their input). */
__attribute__((unused)) static void fx_drain_stdin(void) {
  char tmp[4096];
  while (fread(tmp, 1, sizeof tmp, stdin) > 0) {}
}

/* The LCG used by workloads that generate their own data (matmul, pagerank).
 * Numerical Recipes constants, mod 2^32, output tempered with the high half.
 * Mirrored by lcgNext() in harness/functions/workloads/prng.ts and in as/matmul.ts. */
static inline uint32_t fx_lcg(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return *state ^ (*state >> 16);
}

/* Parse up to `max` unsigned decimal integers separated by whitespace.
 * Returns how many were parsed, or -1 on a malformed token / overflow past 2^32-1. */
__attribute__((unused)) static int fx_parse_u32s(const unsigned char *s, uint32_t *out, int max) {
  int count = 0;
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    if (*s == 0) return count;
    if (*s < '0' || *s > '9' || count == max) return -1;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (uint64_t)(*s - '0');
      if (v > 0xffffffffull) return -1;
      s++;
    }
    if (*s != 0 && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return -1;
    out[count++] = (uint32_t)v;
  }
}

#endif
