/* classify: parse stdin as one Ethernet frame (at most one 802.1Q tag) / IPv4 / UDP and classify it
 * like a packet filter. Prints one line:
 *   class=<id> <name> verdict=<pass|drop>[ ethertype=0x<4 hex>][ proto=<n> src=<a.b.c.d> dst=<a.b.c.d>][ sport=<n> dport=<n>]
 * ethertype for class 2; proto/src/dst for classes >= 4; ports for classes >= 9.
 * The same rules run as the eBPF program fxh_classify (bpf/functions.bpf.c); the names and
 * verdicts are also in harness/functions/workloads/classify.ts. */
#include "../support/fx_common.h"

static const char *const NAMES[] = {"", "short", "non-ipv4", "bad-ipv4", "fragment", "tcp", "icmp", "other-l4",
                                    "bad-udp", "dns", "ntp", "quic", "vxlan", "udp"};
/* 1 = pass, 0 = drop */
static const int PASS[] = {0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1};

static uint32_t be16(const unsigned char *b) { return (uint32_t)b[0] << 8 | b[1]; }
static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* r[0] class, r[1] src, r[2] dst, r[3] sport<<16|dport, r[4] ethertype or proto: as the eBPF program */
static void classify(const unsigned char *p, size_t len, uint32_t r[5]) {
  memset(r, 0, 5 * sizeof r[0]);
  r[0] = 1;
  if (len < 14) return;
  size_t l3 = 14;
  uint32_t type = be16(p + 12);
  if (type == 0x8100) {
    if (len < 18) return;
    type = be16(p + 16);
    l3 = 18;
  }
  if (type != 0x0800) { r[0] = 2; r[4] = type; return; }
  r[0] = 3;
  const unsigned char *ip = p + l3;
  if (l3 + 20 > len) return;
  uint32_t ihl = ip[0] & 15;
  if ((ip[0] >> 4) != 4 || ihl < 5) return;
  uint32_t tot = be16(ip + 2);
  if (tot < ihl * 4 || l3 + tot > len) return;
  r[1] = be32(ip + 12);
  r[2] = be32(ip + 16);
  r[4] = ip[9];
  if ((be16(ip + 6) & 0x1fff) != 0) { r[0] = 4; return; }
  if (ip[9] == 6) { r[0] = 5; return; }
  if (ip[9] == 1) { r[0] = 6; return; }
  if (ip[9] != 17) { r[0] = 7; return; }
  r[0] = 8;
  const unsigned char *udp = ip + ihl * 4;
  if (ihl * 4 + 8 > tot) return;
  uint32_t ulen = be16(udp + 4);
  if (ulen < 8 || ihl * 4 + ulen > tot) return;
  uint32_t sport = be16(udp), dport = be16(udp + 2);
  r[3] = sport << 16 | dport;
  r[0] = dport == 53 ? 9 : dport == 123 ? 10 : dport == 443 ? 11 : dport == 4789 ? 12 : 13;
}

int main(void) {
  size_t len;
  unsigned char *p = fx_read_all(&len);
  if (!p) { fputs("classify: read error or out of memory\n", stderr); return 1; }
  uint32_t r[5];
  classify(p, len, r);
  free(p);
  printf("class=%u %s verdict=%s", (unsigned)r[0], NAMES[r[0]], PASS[r[0]] ? "pass" : "drop");
  if (r[0] == 2) printf(" ethertype=0x%04x", (unsigned)r[4]);
  if (r[0] >= 4)
    printf(" proto=%u src=%u.%u.%u.%u dst=%u.%u.%u.%u", (unsigned)r[4], (unsigned)(r[1] >> 24), (unsigned)(r[1] >> 16 & 255),
           (unsigned)(r[1] >> 8 & 255), (unsigned)(r[1] & 255), (unsigned)(r[2] >> 24), (unsigned)(r[2] >> 16 & 255),
           (unsigned)(r[2] >> 8 & 255), (unsigned)(r[2] & 255));
  if (r[0] >= 9) printf(" sport=%u dport=%u", (unsigned)(r[3] >> 16), (unsigned)(r[3] & 0xffff));
  fputc('\n', stdout);
  return 0;
}
