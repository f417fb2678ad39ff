/*
 * fx_reactor.c - entry point of every wasm32-wasi reactor build.
 *
 * Linked with -mexec-model=reactor, so the module exports `_initialize` (run once
 * by the host: static constructors, libc setup), `memory`, and `fx_invoke`.
 * The workload is compiled with -Dmain=fx_main. One instance serves many calls:
 * the host provides fresh bytes on fd 0 before each fx_invoke(), collects fd 1 after.
 */
#undef main
#include <stdio.h>
#include <stdio_ext.h>

#ifdef FX_MAIN_ARGS
int fx_main(int argc, char **argv);
static int call_fx_main(void) {
  static char arg0[] = "fx";
  static char *argv[] = {arg0, 0};
  return fx_main(1, argv);
}
#else
int fx_main(void);
static int call_fx_main(void) { return fx_main(); }
#endif

__attribute__((export_name("fx_invoke"))) int fx_invoke(void) {
  int status = call_fx_main();
  fflush(stdout);
  fflush(stderr);
  /* Forget EOF and any unread buffered input so the next call starts clean. */
  clearerr(stdin);
  __fpurge(stdin);
  return status;
}
