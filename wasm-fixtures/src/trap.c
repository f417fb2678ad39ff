/* trap (TEST ONLY): executes a trap instruction: wasm `unreachable`, native ud2 (SIGILL). */
int main(void) {
  __builtin_trap();
}
