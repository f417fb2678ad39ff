/* loop (TEST ONLY): spins forever. The volatile counter keeps the optimiser from
 * deleting the loop (an infinite loop without side effects is UB in C11). */
#include <stdint.h>

static volatile uint64_t spins;

int main(void) {
  for (;;) spins++;
}
