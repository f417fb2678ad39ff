/*
 * hop-pingpong.c - the kernel hop alone: a blocking TCP ping-pong over 127.0.0.1 between two
 * processes, no runtime in between. Built and run by harness/bpf/hop.ts (in the platform's
 * cgroups), to separate what the sockmap fast path saves in the kernel from what the platform's
 * processes spend around it.
 *
 *   hop-pingpong server            listens on 127.0.0.1:0, prints the port, echoes until EOF
 *   hop-pingpong client PORT SIZE WARMUP N
 *                                  prints one round-trip time (ns) per line for the N measured
 *                                  exchanges, then "sent <messages>" (its own sends, warm-up included)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int full(int fd, char *buf, size_t n, int reading) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = reading ? read(fd, buf + done, n - done) : write(fd, buf + done, n - done);
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (argc >= 2 && strcmp(argv[1], "server") == 0) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al)) die("listen");
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[65536];
    for (;;) {
      ssize_t r = read(c, buf, sizeof buf);
      if (r <= 0) return 0;
      if (full(c, buf, (size_t)r, 0)) return 0;
    }
  }
  if (argc != 6 || strcmp(argv[1], "client") != 0) {
    fprintf(stderr, "usage: %s server | client PORT SIZE WARMUP N\n", argv[0]);
    return 2;
  }
  size_t size = (size_t)atol(argv[3]);
  long warm = atol(argv[4]), n = atol(argv[5]);
  if (size < 1 || size > 65536) die("size");
  a.sin_port = htons((unsigned short)atoi(argv[2]));
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char *out = malloc(size), *in = malloc(size);
  memset(out, 'x', size);
  long long *t = malloc(sizeof(long long) * (size_t)(n > 0 ? n : 1));
  long sent = 0;
  for (long i = 0; i < warm + n; i++) {
    long long t0 = now_ns();
    if (full(s, out, size, 0)) die("write");
    sent++;
    if (full(s, in, size, 1)) die("read");
    if (i >= warm) t[i - warm] = now_ns() - t0;
  }
  for (long i = 0; i < n; i++) printf("%lld\n", t[i]);
  printf("sent %ld\n", sent);
  close(s);
  return 0;
}
