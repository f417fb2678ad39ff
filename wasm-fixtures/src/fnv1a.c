/* fnv1a: FNV-1a 32-bit hash of stdin. Prints "fnv1a32=<8 hex digits> len=<bytes>\n".
 * The same function runs as the eBPF program fxh_fnv1a (bpf/functions.bpf.c). */
#include "../support/fx_common.h"

int main(void) {
  uint32_t h = 2166136261u;
  unsigned long long len = 0;
  unsigned char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
    for (size_t i = 0; i < n; i++) {
      h ^= buf[i];
      h *= 16777619u;
    }
    len += n;
  }
  if (ferror(stdin)) { fputs("fnv1a: read error\n", stderr); return 1; }
  printf("fnv1a32=%08x len=%llu\n", (unsigned)h, len);
  return 0;
}
