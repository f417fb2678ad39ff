/* crash (TEST ONLY): writes through a NULL pointer. Native: SIGSEGV.
 * In wasm, address 0 is ordinary linear memory and the store would succeed silently,
 * so under __wasm__ it calls abort() instead (wasi-libc: `unreachable` trap). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
#ifdef __wasm__
  fputs("crash: NULL write is not a fault in wasm; aborting instead\n", stderr);
  abort();
#else
  int *volatile p = NULL;
  *p = 42;
  return 0;
#endif
}
