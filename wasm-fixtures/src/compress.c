/*
 * compress: LZ77 codec (FXZ1, an LZ4-like byte format, written for this harness).
 * Compresses stdin, decompresses the result, checks the round trip (exit status 4 on
 * mismatch, nothing printed), and writes the compressed bytes to stdout.
 *
 * Format:
 *   "FXZ1"  u32le original length
 *   then sequences until the original length is reached:
 *     token: high nibble = literal count, low nibble = match length - 4
 *            (a nibble of 15 is followed by bytes added on top: 255 means "add 255 and continue")
 *     literal bytes
 *     -- the stream may end here (last sequence has literals only) --
 *     u16le offset (1..65535, distance back from the current output position)
 *   a match may overlap its own output (copy byte by byte).
 *
 * Compressor (must stay identical to harness/functions/workloads/compress.ts):
 *   64Ki-entry hash table of last positions, hash = (u32le(p) * 2654435761) >> 16;
 *   greedy: at every position i with i + 4 <= n look up/replace table[hash]; a candidate
 *   within 65535 bytes whose 4 bytes are equal is extended as far as possible and emitted;
 *   positions inside a match are not inserted.
 */
#include "../support/fx_common.h"

#define HASH_BITS 16
#define MAX_OFFSET 65535

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned char *put_len(unsigned char *o, size_t v) {
  while (v >= 255) { *o++ = 255; v -= 255; }
  *o++ = (unsigned char)v;
  return o;
}

static unsigned char *emit_seq(unsigned char *o, const unsigned char *lit, size_t nlit, size_t mlen,
                               size_t off) {
  unsigned char *token = o++;
  unsigned char t = (unsigned char)((nlit >= 15 ? 15 : nlit) << 4);
  if (nlit >= 15) o = put_len(o, nlit - 15);
  memcpy(o, lit, nlit);
  o += nlit;
  if (mlen) {
    size_t m = mlen - 4;
    t |= (unsigned char)(m >= 15 ? 15 : m);
    *o++ = (unsigned char)off;
    *o++ = (unsigned char)(off >> 8);
    if (m >= 15) o = put_len(o, m - 15);
  }
  *token = t;
  return o;
}

static size_t fxz_bound(size_t n) { return 8 + n + n / 255 + 16; }

/* returns compressed size, or 0 on allocation failure */
static size_t fxz_compress(const unsigned char *in, size_t n, unsigned char *out) {
  unsigned char *o = out;
  memcpy(o, "FXZ1", 4);
  o[4] = (unsigned char)n; o[5] = (unsigned char)(n >> 8);
  o[6] = (unsigned char)(n >> 16); o[7] = (unsigned char)(n >> 24);
  o += 8;
  if (n == 0) return 8;
  int32_t *table = malloc(sizeof(int32_t) << HASH_BITS);
  if (!table) return 0;
  for (size_t i = 0; i < (size_t)1 << HASH_BITS; i++) table[i] = -1;
  size_t anchor = 0, i = 0;
  while (i + 4 <= n) {
    uint32_t v = rd32(in + i);
    uint32_t h = (v * 2654435761u) >> (32 - HASH_BITS);
    int32_t cand = table[h];
    table[h] = (int32_t)i;
    if (cand >= 0 && i - (size_t)cand <= MAX_OFFSET && rd32(in + cand) == v) {
      size_t m = 4;
      while (i + m < n && in[cand + m] == in[i + m]) m++;
      o = emit_seq(o, in + anchor, i - anchor, m, i - (size_t)cand);
      i += m;
      anchor = i;
    } else {
      i++;
    }
  }
  if (anchor < n) o = emit_seq(o, in + anchor, n - anchor, 0, 0);
  free(table);
  return (size_t)(o - out);
}

static int get_len(const unsigned char **p, const unsigned char *end, size_t *v) {
  for (;;) {
    if (*p >= end) return 0;
    unsigned char b = *(*p)++;
    *v += b;
    if (b != 255) return 1;
  }
}

/* returns 1 and a malloc'd buffer on success */
static int fxz_decompress(const unsigned char *c, size_t clen, unsigned char **outp, size_t *outn) {
  if (clen < 8 || memcmp(c, "FXZ1", 4) != 0) return 0;
  size_t n = (size_t)c[4] | (size_t)c[5] << 8 | (size_t)c[6] << 16 | (size_t)c[7] << 24;
  unsigned char *out = malloc(n ? n : 1);
  if (!out) return 0;
  const unsigned char *p = c + 8, *end = c + clen;
  size_t o = 0;
  while (o < n) {
    if (p >= end) goto bad;
    unsigned char t = *p++;
    size_t lit = t >> 4;
    if (lit == 15 && !get_len(&p, end, &lit)) goto bad;
    if (lit > (size_t)(end - p) || lit > n - o) goto bad;
    memcpy(out + o, p, lit);
    p += lit;
    o += lit;
    if (o == n) break;
    if (end - p < 2) goto bad;
    size_t off = (size_t)p[0] | (size_t)p[1] << 8;
    p += 2;
    size_t m = t & 15;
    if (m == 15 && !get_len(&p, end, &m)) goto bad;
    m += 4;
    if (off == 0 || off > o || m > n - o) goto bad;
    for (size_t k = 0; k < m; k++, o++) out[o] = out[o - off];
  }
  if (p != end) goto bad;
  *outp = out;
  *outn = n;
  return 1;
bad:
  free(out);
  return 0;
}

int main(void) {
  size_t n;
  unsigned char *in = fx_read_all(&n);
  if (!in) { fputs("compress: cannot read input\n", stderr); return 1; }
  if (n > 0xffffffffu) { free(in); fputs("compress: input too large\n", stderr); return 2; }
  unsigned char *comp = malloc(fxz_bound(n));
  size_t clen = comp ? fxz_compress(in, n, comp) : 0;
  if (!clen) { free(in); free(comp); fputs("compress: out of memory\n", stderr); return 1; }
  unsigned char *round = NULL;
  size_t rn = 0;
  int ok = fxz_decompress(comp, clen, &round, &rn) && rn == n && memcmp(round, in, n) == 0;
  free(round);
  free(in);
  if (!ok) {
    free(comp);
    fputs("compress: round trip mismatch\n", stderr);
    return 4;
  }
  fwrite(comp, 1, clen, stdout);
  free(comp);
  return 0;
}
