/*
 * fx_native.c - entry point of every static native build.
 *
 * The workload is compiled with -Dmain=fx_main, so its own main() becomes fx_main().
 *
 *   <binary>           run fx_main() once on the real stdin/stdout; exit with its status
 *   <binary> --serve   framed requests on fd 0, framed responses on fd 1:
 *                        request:  u32le length, `length` input bytes
 *                        response: u32le output length, i32le status, output bytes
 *                      clean exit 0 on EOF at a frame boundary.
 *
 * FX_MEM_LIMIT_MB=<n> caps the address space (RLIMIT_AS) before anything else runs.
 * stderr is left alone (fd 2). A crashing function kills the whole process; the
 * caller is expected to notice and respawn.
 */
#undef main
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef FX_MAIN_ARGS
int fx_main(int argc, char **argv);
static int call_fx_main(void) {
  static char arg0[] = "fx";
  char *argv[] = {arg0, NULL};
  return fx_main(1, argv);
}
#else
int fx_main(void);
static int call_fx_main(void) { return fx_main(); }
#endif

static void apply_mem_limit(void) {
  const char *s = getenv("FX_MEM_LIMIT_MB");
  if (!s || !*s) return;
  char *end = NULL;
  unsigned long long mb = strtoull(s, &end, 10);
  if (*end != 0 || mb == 0) {
    fprintf(stderr, "fx_native: ignoring invalid FX_MEM_LIMIT_MB=%s\n", s);
    return;
  }
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)(mb * 1024ull * 1024ull);
  if (setrlimit(RLIMIT_AS, &rl) != 0)
    fprintf(stderr, "fx_native: setrlimit(RLIMIT_AS, %llu MiB): %s\n", mb, strerror(errno));
}

/* Read exactly n bytes unless EOF comes first. Returns bytes read, or -1 on error. */
static long read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (long)got;
}

static int write_full(int fd, const void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, (const char *)buf + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)w;
  }
  return 0;
}

static void put_le32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static int serve(void) {
  FILE *orig_in = stdin, *orig_out = stdout;
  static char empty[1];
  for (;;) {
    unsigned char hdr[8];
    long r = read_full(0, hdr, 4);
    if (r == 0) return 0; /* clean EOF */
    if (r != 4) {
      fprintf(stderr, "fx_native --serve: truncated request header\n");
      return 65;
    }
    uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                   (uint32_t)hdr[3] << 24;
    char *in_buf = empty;
    if (len > 0) {
      in_buf = malloc(len);
      if (!in_buf) {
        fprintf(stderr, "fx_native --serve: cannot allocate %u input bytes\n", len);
        return 70;
      }
      if (read_full(0, in_buf, len) != (long)len) {
        fprintf(stderr, "fx_native --serve: truncated request payload\n");
        return 65;
      }
    }
    /* glibc >= 2.22 accepts size 0; fall back to /dev/null just in case. */
    FILE *in = fmemopen(in_buf, len, "r");
    if (!in && len == 0) in = fopen("/dev/null", "r");
    char *out_buf = NULL;
    size_t out_len = 0;
    FILE *out = open_memstream(&out_buf, &out_len);
    if (!in || !out) {
      fprintf(stderr, "fx_native --serve: cannot open memory streams: %s\n", strerror(errno));
      return 70;
    }
    stdin = in;
    stdout = out;
    int status = call_fx_main();
    fclose(out); /* finalises out_buf/out_len */
    fclose(in);
    stdin = orig_in;
    stdout = orig_out;
    if (in_buf != empty) free(in_buf);

    if (out_len > 0xffffffffu) {
      fprintf(stderr, "fx_native --serve: output too large\n");
      free(out_buf);
      return 70;
    }
    put_le32(hdr, (uint32_t)out_len);
    put_le32(hdr + 4, (uint32_t)status);
    if (write_full(1, hdr, 8) != 0 || write_full(1, out_buf, out_len) != 0) {
      free(out_buf);
      return 0; /* reader went away */
    }
    free(out_buf);
  }
}

int main(int argc, char **argv) {
  apply_mem_limit();
  if (argc > 1) {
    if (argc == 2 && strcmp(argv[1], "--serve") == 0) return serve();
    fprintf(stderr, "usage: %s [--serve]\n", argv[0]);
    return 64;
  }
  return call_fx_main();
}
