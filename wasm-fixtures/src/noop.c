/* noop: consume the input, print "ok\n". Measures pure invocation overhead. */
#include "../support/fx_common.h"

int main(void) {
  fx_drain_stdin();
  fputs("ok\n", stdout);
  return 0;
}
