// In the guest (root namespace): runs rdma-peer.ts in namespace B and rdma-client.ts in A, then a
// small micro-benchmark with perftest beside it; everything they saw lands in <out> for the host test.
//   node rdma-suite.js <out dir>
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMicrobench } from '../../harness/rdma/microbench.js';
import { guestPair } from '../../harness/rdma/pair.js';

const out = process.argv[2];
if (!out) throw new Error('usage: rdma-suite <out dir>');
const here = path.dirname(fileURLToPath(import.meta.url));
const pair = guestPair();
const PORT = 7600;

function run(ns: string, argv: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => process.stdout.write(d) && (text += d));
    child.stderr.on('data', (d) => process.stdout.write(d) && (text += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(`${text}\nexit ${code ?? signal}`);
    });
  });
}

const peer = run(pair.b.ns, [path.join(here, 'rdma-peer.js'), pair.b.address, String(PORT)], 240_000);
const client = await run(pair.a.ns, [path.join(here, 'rdma-client.js'), pair.b.address, String(PORT), out], 240_000);
const peerOut = await peer;
fs.writeFileSync(path.join(out, 'rdma-sides.txt'), `--- client\n${client}\n--- peer\n${peerOut}\n`);
const rows = await runMicrobench({ pair, sizes: [64], kinds: ['write_lat', 'read_lat'], iters: 100, warmup: 10, extraPolls: ['js'], perftest: true, port: PORT + 10, timeoutMs: 120_000 });
fs.writeFileSync(path.join(out, 'microbench.json'), JSON.stringify(rows));
console.log('suite: done');
