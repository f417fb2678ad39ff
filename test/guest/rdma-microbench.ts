// In the guest: the verbs micro-benchmarks and perftest, small, between fxa and fxb; writes
// <out>/microbench.json for the host test (and prints a one-line summary per row).
import fs from 'node:fs';
import path from 'node:path';
import { guestPair } from '../../harness/rdma/pair.js';
import { medianNs, runMicrobench } from '../../harness/rdma/microbench.js';

const out = process.argv[2];
if (!out) throw new Error('usage: rdma-microbench <out dir> [iters] [sizes]');
const iters = Number(process.argv[3] ?? 200);
const sizes = (process.argv[4] ?? '64,4096').split(',').map(Number);
const rows = await runMicrobench({ pair: guestPair(), sizes, iters, warmup: Math.ceil(iters / 10), extraPolls: ['event', 'js'], perftest: true, timeoutMs: 240_000 });
fs.writeFileSync(path.join(out, 'microbench.json'), JSON.stringify(rows));
for (const r of rows) {
  const v = r.source === 'harness' ? (r.bytesPerSec ? `${(r.bytesPerSec / 1e6).toFixed(1)} MB/s` : `median ${(medianNs(r) / 1000).toFixed(1)} us`) : r.perftest ? JSON.stringify(r.perftest) : '';
  console.log(`${r.source} ${r.metric} ${r.size} ${r.poll}: ${r.error ? `ERROR ${r.error}` : v}`);
}
