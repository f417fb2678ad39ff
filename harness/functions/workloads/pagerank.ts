import type { Scale, Workload } from '../types.js';
import { Lcg, ascii, parseU32s } from './prng.js';

export const PAGERANK_PARAMS: Record<Scale, { nodes: number; edges: number; iterations: number }> = {
  small: { nodes: 200, edges: 1000, iterations: 20 },
  large: { nodes: 20000, edges: 100000, iterations: 20 },
};

const TOTAL = 2 ** 40;

/** floor(a / b) for non-negative integers below 2^53, exact */
function idiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  while (q * b > a) q--;
  while ((q + 1) * b <= a) q++;
  return q;
}

export const pagerank: Workload = {
  name: 'pagerank',
  summary: 'integer fixed-point PageRank on an LCG graph (200 nodes small, 20k nodes/100k edges large), top 10',
  input(seed: number, scale: Scale): Uint8Array {
    const p = PAGERANK_PARAMS[scale];
    return ascii(`${p.nodes} ${p.edges} ${p.iterations} ${seed >>> 0}\n`);
  },
  expected(input: Uint8Array): Uint8Array {
    const [nodes, edges, iters, seed] = parseU32s(input, 4, 'pagerank') as [number, number, number, number];
    if (nodes < 1 || nodes > 1e7 || edges > 1e8 || iters > 100000) throw new Error('pagerank: parameters out of range');
    const lcg = new Lcg(seed);
    const src = new Uint32Array(edges);
    const dst = new Uint32Array(edges);
    const outdeg = new Uint32Array(nodes);
    for (let e = 0; e < edges; e++) {
      const r1 = lcg.next();
      const r2 = lcg.next();
      const r3 = lcg.next();
      const s = r1 % nodes;
      src[e] = s;
      dst[e] = idiv((r2 % nodes) * (r3 % nodes), nodes);
      outdeg[s]!++;
    }
    // Float64Array holds the integer ranks exactly (all < 2^53)
    const rank = new Float64Array(nodes).fill(idiv(TOTAL, nodes));
    const contrib = new Float64Array(nodes);
    const acc = new Float64Array(nodes);
    for (let it = 0; it < iters; it++) {
      let dangling = 0;
      for (let u = 0; u < nodes; u++) {
        const d = outdeg[u]!;
        if (d === 0) {
          dangling += rank[u]!;
          contrib[u] = 0;
        } else {
          contrib[u] = idiv(rank[u]!, d);
        }
      }
      acc.fill(0);
      for (let e = 0; e < edges; e++) acc[dst[e]!]! += contrib[src[e]!]!;
      const base = idiv(idiv(15 * TOTAL, 100) + idiv(85 * dangling, 100), nodes);
      for (let v = 0; v < nodes; v++) rank[v] = base + idiv(acc[v]! * 85, 100);
    }
    let total = 0;
    for (let v = 0; v < nodes; v++) total += rank[v]!;
    const order = Array.from({ length: nodes }, (_, i) => i);
    order.sort((x, y) => rank[y]! - rank[x]! || x - y);
    let out = `pagerank nodes=${nodes} edges=${edges} iters=${iters} total=${total}\n`;
    for (const v of order.slice(0, 10)) out += `${v} ${rank[v]!}\n`;
    return ascii(out);
  },
};
