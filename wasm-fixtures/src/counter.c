/* counter (TEST ONLY): prints how many calls this instance has served, this one included.
 * A fresh instance answers "1"; one instance reused answers 1, 2, 3, ... So tests can see
 * whether a mode really starts a new instance (cold) or reuses one (warm). */
#include "../support/fx_common.h"

static unsigned long calls;

int main(void) {
  fx_drain_stdin();
  printf("%lu\n", ++calls);
  return 0;
}
