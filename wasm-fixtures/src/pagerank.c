/*
 * pagerank: input "nodes edges iterations seed".
 *
 * Graph: for each edge, with the shared LCG: src = r1 % nodes, dst = (r2 % nodes) * (r3 % nodes) / nodes
 * (skewed towards low ids, so there are hubs). Duplicate edges and self loops are kept.
 *
 * Integer fixed-point PageRank, damping 85/100, total rank mass TOTAL = 2^40:
 *   rank0[v] = TOTAL / nodes
 *   each iteration: contrib[u] = rank[u] / outdeg[u]      (nodes with outdeg 0 are dangling)
 *                   sum[v]     = sum of contrib[src] over edges src->v
 *                   base       = (15*TOTAL/100 + 85*dangling/100) / nodes
 *                   rank[v]    = base + sum[v]*85/100
 * every division floors; every intermediate stays < 2^53 so the JS oracle is exact.
 * Output: "pagerank nodes=N edges=E iters=I total=<sum of ranks>\n" then the top 10 nodes
 * (rank descending, id ascending on ties) as "<id> <rank>\n".
 */
#include "../support/fx_common.h"

#define TOTAL (1ull << 40)
#define TOPK 10

int main(void) {
  size_t len;
  unsigned char *in = fx_read_all(&len);
  if (!in) { fputs("pagerank: cannot read input\n", stderr); return 1; }
  uint32_t args[4];
  int nargs = fx_parse_u32s(in, args, 4);
  free(in);
  if (nargs != 4 || args[0] == 0 || args[0] > 10000000u || args[1] > 100000000u ||
      args[2] > 100000u) {
    fputs("pagerank: expected \"nodes edges iterations seed\" (1 <= nodes <= 1e7, edges <= 1e8)\n",
          stderr);
    return 2;
  }
  uint32_t nodes = args[0], edges = args[1], iters = args[2], s = args[3];
  uint32_t *src = malloc((size_t)edges * sizeof *src + 1);
  uint32_t *dst = malloc((size_t)edges * sizeof *dst + 1);
  uint32_t *outdeg = calloc(nodes, sizeof *outdeg);
  uint64_t *rank = malloc(nodes * sizeof *rank);
  uint64_t *contrib = malloc(nodes * sizeof *contrib);
  uint64_t *acc = malloc(nodes * sizeof *acc);
  int status = 0;
  if (!src || !dst || !outdeg || !rank || !contrib || !acc) {
    fputs("pagerank: out of memory\n", stderr);
    status = 1;
    goto out;
  }
  for (uint32_t e = 0; e < edges; e++) {
    uint32_t r1 = fx_lcg(&s), r2 = fx_lcg(&s), r3 = fx_lcg(&s);
    src[e] = r1 % nodes;
    dst[e] = (uint32_t)((uint64_t)(r2 % nodes) * (r3 % nodes) / nodes);
    outdeg[src[e]]++;
  }
  for (uint32_t v = 0; v < nodes; v++) rank[v] = TOTAL / nodes;
  for (uint32_t it = 0; it < iters; it++) {
    uint64_t dangling = 0;
    for (uint32_t u = 0; u < nodes; u++) {
      if (outdeg[u] == 0) { dangling += rank[u]; contrib[u] = 0; }
      else contrib[u] = rank[u] / outdeg[u];
      acc[u] = 0;
    }
    for (uint32_t e = 0; e < edges; e++) acc[dst[e]] += contrib[src[e]];
    uint64_t base = (15 * TOTAL / 100 + 85 * dangling / 100) / nodes;
    for (uint32_t v = 0; v < nodes; v++) rank[v] = base + acc[v] * 85 / 100;
  }
  uint64_t total = 0;
  uint32_t top[TOPK];
  int ntop = 0;
  for (uint32_t v = 0; v < nodes; v++) {
    total += rank[v];
    /* ids arrive in ascending order, so a tie never displaces an earlier id */
    if (ntop == TOPK && rank[v] <= rank[top[TOPK - 1]]) continue;
    int pos = ntop < TOPK ? ntop++ : TOPK - 1;
    while (pos > 0 && rank[top[pos - 1]] < rank[v]) { top[pos] = top[pos - 1]; pos--; }
    top[pos] = v;
  }
  printf("pagerank nodes=%u edges=%u iters=%u total=%llu\n", nodes, edges, iters,
         (unsigned long long)total);
  for (int i = 0; i < ntop; i++) printf("%u %llu\n", top[i], (unsigned long long)rank[top[i]]);
out:
  free(src); free(dst); free(outdeg); free(rank); free(contrib); free(acc);
  return status;
}
