// One perftest run between the guest's two rxe devices (rdma-ebpf-net.ts): server on the B device,
// client on A, its output parsed: the QPNs both ends used (so the eBPF counters can be looked up by
// QP), the latency summary or bandwidth, and per-iteration latencies (-U) where perftest has them.
import { spawn } from 'node:child_process';
import os from 'node:os';
import type { RxePair } from './rdma-ebpf-net.js';

export type PerftestKind = 'write_lat' | 'send_lat' | 'read_lat' | 'write_bw' | 'send_bw';

export interface PerftestRun {
  kind: PerftestKind;
  iters: number;
  size: number;
  clientExit: number | null;
  serverExit: number | null;
  /** QPN of the client's QP (on rxe_a) and of the server's (rxe_b), from the client's output */
  clientQpn: number;
  serverQpn: number;
  /** latency tests: t_typical, t_avg, t_max (us) and each iteration's latency when printed */
  typicalUs?: number;
  avgUs?: number;
  maxUs?: number;
  samplesUs: number[];
  /** bandwidth tests: BW average (MB/s) */
  bwMBps?: number;
  wallMs: number;
  clientOutput: string;
  serverOutput: string;
}

function run(args: string[], timeoutMs: number): { done: Promise<{ code: number | null; out: string }>; kill(): void } {
  const p = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
  return { done, kill: () => p.kill('SIGKILL') };
}

const qpns = (out: string) => [...out.matchAll(/(local|remote) address: .*?QPN (0x[0-9a-f]+)/gi)].map((m) => [m[1]!.toLowerCase(), parseInt(m[2]!, 16)] as const);

export function parsePerftest(kind: PerftestKind, out: string): Pick<PerftestRun, 'clientQpn' | 'serverQpn' | 'typicalUs' | 'avgUs' | 'maxUs' | 'samplesUs' | 'bwMBps'> {
  const q = qpns(out);
  const clientQpn = q.find(([w]) => w === 'local')?.[1] ?? NaN;
  const serverQpn = q.find(([w]) => w === 'remote')?.[1] ?? NaN;
  const lines = out.split('\n');
  const head = lines.findIndex((l) => /^\s*#bytes\s+#iterations/.test(l));
  const row = head >= 0 ? lines.slice(head + 1).find((l) => /^\s*\d+\s+\d+\s+[\d.]+/.test(l)) : undefined;
  const nums = row ? row.trim().split(/\s+/).map(Number) : [];
  const samplesUs = lines.map((l) => /^\s*\d+,\s*([\d.]+)\s*$/.exec(l)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1]));
  if (kind.endsWith('_lat')) return { clientQpn, serverQpn, typicalUs: nums[4], avgUs: nums[5], maxUs: nums[3], samplesUs };
  return { clientQpn, serverQpn, bwMBps: nums[3], samplesUs };
}

/**
 * Runs ib_<kind> -n iters -s size: the server first, then the client, retried while the server is
 * not listening yet. The port differs per run, so a server left by a timed-out run cannot answer.
 */
export async function perftest(pair: RxePair, kind: PerftestKind, iters: number, size: number, opts: { timeoutMs?: number; port?: number; unsorted?: boolean; extra?: string[] } = {}): Promise<PerftestRun> {
  const bin = `ib_${kind}`;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const port = String(opts.port ?? 18515);
  // -F: under emulation perftest's cycle-counter calibration sometimes fails its r^2 check, and
  // without -F a bandwidth test then exits 1 after a complete transfer ("Can't produce a report")
  const common = ['-n', String(iters), '-s', String(size), '-p', port, ...(opts.unsorted && kind.endsWith('_lat') ? ['-U'] : []), ...(kind.endsWith('_bw') ? ['-F'] : []), ...(opts.extra ?? [])];
  const t0 = Date.now();
  // both ends busy-poll: on one vCPU each would wait for the other's time slice (milliseconds), so
  // with two or more CPUs each gets its own
  const pin = (cpu: number) => (os.availableParallelism() >= 2 ? ['taskset', '-c', String(cpu)] : []);
  const server = run([...pin(1), bin, '-d', pair.devB, ...common], timeoutMs);
  let client: { code: number | null; out: string } = { code: null, out: '' };
  try {
    for (let attempt = 0; attempt < 40; attempt++) {
      client = await run([...pin(0), bin, '-d', pair.devA, ...common, pair.addrB], timeoutMs - (Date.now() - t0)).done;
      if (client.code === 0 || !/Couldn't connect|Unable to open file descriptor for socket connection/i.test(client.out)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    if (client.code !== 0) server.kill();
  }
  const s = await server.done;
  return { kind, iters, size, clientExit: client.code, serverExit: s.code, ...parsePerftest(kind, client.out), wallMs: Date.now() - t0, clientOutput: client.out, serverOutput: s.out };
}
