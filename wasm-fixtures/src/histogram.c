/* histogram: byte-value histogram of stdin. Prints "len=<bytes> distinct=<values>\n", then
 * "<value as 2 hex digits> <count>\n" for every byte value that occurs, in increasing order.
 * The same function runs as the eBPF program fxh_histogram (bpf/functions.bpf.c). */
#include "../support/fx_common.h"

int main(void) {
  static const char hex[] = "0123456789abcdef";
  unsigned long long count[256] = {0}, len = 0;
  unsigned char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
    for (size_t i = 0; i < n; i++) count[buf[i]]++;
    len += n;
  }
  if (ferror(stdin)) { fputs("histogram: read error\n", stderr); return 1; }
  unsigned distinct = 0;
  for (int v = 0; v < 256; v++) distinct += count[v] != 0;
  printf("len=%llu distinct=%u\n", len, distinct);
  for (int v = 0; v < 256; v++)
    if (count[v]) printf("%c%c %llu\n", hex[v >> 4], hex[v & 15], count[v]);
  return 0;
}
