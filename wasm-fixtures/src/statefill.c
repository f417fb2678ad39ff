/* statefill (TEST ONLY): an instance whose state size is its input, for fork tests and benchmarks.
 * Input: the state size in MiB (decimal, 1..2048). The first call allocates that much and fills it
 * with an LCG pattern; every call adds 1 to the instance's call count and prints
 * "mib=N calls=K sum=S", S an FNV-1a-style checksum of every 32-bit word of the state, read anew on
 * each call. So a fork child whose parent served one call answers calls=2 with the parent's sum. */
#include "../support/fx_common.h"

static uint32_t *state;
static unsigned long mib, calls;

int main(void) {
  size_t len = 0;
  unsigned char *in = fx_read_all(&len);
  if (!in) return 1;
  unsigned long want = strtoul((char *)in, NULL, 10);
  free(in);
  if (want < 1 || want > 2048) {
    fprintf(stderr, "statefill: the input must be a size in MiB from 1 to 2048\n");
    return 2;
  }
  size_t words = (size_t)want << 18;
  if (!state) {
    state = malloc(words * 4);
    if (!state) {
      fprintf(stderr, "statefill: cannot allocate %lu MiB\n", want);
      return 3;
    }
    uint32_t x = 0x12345678u ^ (uint32_t)want;
    for (size_t i = 0; i < words; i++) {
      x = x * 1664525u + 1013904223u;
      state[i] = x;
    }
    mib = want;
  } else if (want != mib) {
    fprintf(stderr, "statefill: this instance holds %lu MiB, asked for %lu\n", mib, want);
    return 2;
  }
  calls++;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < words; i++) h = (h ^ state[i]) * 16777619u;
  printf("mib=%lu calls=%lu sum=%08x\n", mib, calls, h);
  return 0;
}
