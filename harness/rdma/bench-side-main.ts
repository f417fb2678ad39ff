// node build/harness/rdma/bench-side-main.js server|client <ip> <port> <plan json> <timeout ms>
// One side of the verbs micro-benchmarks (bench-side.ts), run in a namespace by microbench.ts.
// The client prints `result <json>` per case; both print `error <text>` and exit 1 on failure.
import { runClient, runServer, type BenchCase } from './bench-side.js';

const [role, ip, port, planJson, timeout] = process.argv.slice(2);
if ((role !== 'server' && role !== 'client') || !ip || !port || !planJson) {
  console.error('usage: bench-side-main server|client <ip> <port> <plan json> [timeout ms]');
  process.exit(2);
}
const plan = JSON.parse(planJson) as BenchCase[];
const timeoutMs = Number(timeout ?? 60000);
try {
  if (role === 'server') {
    console.log('ready');
    await runServer(ip, Number(port), plan, timeoutMs);
  } else await runClient(ip, Number(port), plan, timeoutMs, (r) => console.log(`result ${JSON.stringify(r)}`));
  process.exit(0);
} catch (e) {
  console.log(`error ${(e as Error).message}`);
  process.exit(1);
}
