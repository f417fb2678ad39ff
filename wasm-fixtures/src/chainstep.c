/* chainstep: one stage of a function chain. Reads stdin and writes it back with every byte
 * incremented by 1 (mod 256), so the output of N chained stages is the input with N added to
 * every byte (oracle: harness/functions/workloads/chainstep.ts). */
#include "../support/fx_common.h"

int main(void) {
  size_t len = 0;
  unsigned char *buf = fx_read_all(&len);
  if (!buf) { fputs("chainstep: read error or out of memory\n", stderr); return 1; }
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(buf[i] + 1u);
  if (len && fwrite(buf, 1, len, stdout) != len) { free(buf); fputs("chainstep: write error\n", stderr); return 1; }
  free(buf);
  return 0;
}
