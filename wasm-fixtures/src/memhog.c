/* memhog (TEST ONLY): allocates and touches 1 MiB chunks until malloc fails, then
 * reports on stderr and exit(3). The chunks are chained from a volatile global so the
 * allocations cannot be optimised away. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20)

static void *volatile g_head;

int main(void) {
  unsigned long mib = 0;
  for (;;) {
    char *p = malloc(CHUNK);
    if (!p) {
      fprintf(stderr, "memhog: malloc failed after %lu MiB\n", mib);
      exit(3);
    }
    memset(p, 0xa5, CHUNK);
    *(void **)p = g_head;
    g_head = p;
    mib++;
  }
}
