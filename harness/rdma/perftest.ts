// perftest (ib_write_lat, ib_read_lat, ib_send_lat, ib_write_bw) between the two RDMA namespaces of
// a pair, and the parsing of its result table.
import { spawn } from 'node:child_process';
import { inNs, type RdmaEnd, type RdmaPair } from './pair.js';

export type PerftestTool = 'ib_write_lat' | 'ib_read_lat' | 'ib_send_lat' | 'ib_write_bw';

export interface PerftestLatency {
  kind: 'latency';
  bytes: number;
  iterations: number;
  /** µs, as perftest prints them; write and send latency are half round trips, read latency whole READs */
  tMinUs: number;
  tMaxUs: number;
  tTypicalUs: number;
  tAvgUs: number;
  tStdevUs: number;
  p99Us: number;
  p999Us: number;
}

export interface PerftestBandwidth {
  kind: 'bandwidth';
  bytes: number;
  iterations: number;
  bwPeakMBps: number;
  bwAvgMBps: number;
  msgRateMpps: number;
}

const num = (s: string) => (/^-?nan$/i.test(s) ? NaN : Number(s));

/** The result line under perftest's `#bytes` header; throws quoting the output when there is none. */
export function parsePerftest(output: string): PerftestLatency | PerftestBandwidth {
  const lines = output.split('\n');
  const h = lines.findIndex((l) => /^\s*#bytes\s+#iterations/.test(l));
  const row = h < 0 ? undefined : lines.slice(h + 1).find((l) => /^\s*\d+\s+\d+\s/.test(l));
  if (!row) throw new Error(`no result table in perftest's output: ${output.trim().slice(-600)}`);
  const v = row.trim().split(/\s+/).map(num);
  // only a deviation may be -nan (one sample); any other field that is not a number is not a result
  const bad = v.findIndex((x, i) => Number.isNaN(x) && !(/t_typical/.test(lines[h]!) && i === 6));
  if (bad >= 0) throw new Error(`perftest's result row has a non-number in column ${bad + 1}: "${row.trim()}"`);
  if (/t_typical/.test(lines[h]!)) {
    if (v.length < 9) throw new Error(`a latency row of ${v.length} columns, want 9: "${row.trim()}"`);
    const [bytes, iterations, tMinUs, tMaxUs, tTypicalUs, tAvgUs, tStdevUs, p99Us, p999Us] = v as [number, number, number, number, number, number, number, number, number];
    return { kind: 'latency', bytes, iterations, tMinUs, tMaxUs, tTypicalUs, tAvgUs, tStdevUs, p99Us, p999Us };
  }
  if (/BW average/.test(lines[h]!)) {
    if (v.length < 5) throw new Error(`a bandwidth row of ${v.length} columns, want 5: "${row.trim()}"`);
    const [bytes, iterations, bwPeakMBps, bwAvgMBps, msgRateMpps] = v as [number, number, number, number, number];
    return { kind: 'bandwidth', bytes, iterations, bwPeakMBps, bwAvgMBps, msgRateMpps };
  }
  throw new Error(`an unknown perftest table header: "${lines[h]!.trim()}"`);
}

function run(argv: string[], timeoutMs: number): { done: Promise<{ code: number | null; output: string }>; kill: () => void } {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; output: string }>((resolve) => {
    child.on('error', (e) => {
      output += `\n${e.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : null), output: output + (signal ? `\n(killed by ${signal})` : '') });
    });
  });
  return { done, kill: () => child.kill('SIGKILL') };
}

export interface PerftestOptions {
  size: number;
  iterations: number;
  /** TCP port of perftest's own exchange (default 18515) */
  port?: number;
  timeoutMs?: number;
}

/** Runs `tool` with its server in the pair's namespace B and its client in A; parses the client's table. */
export async function runPerftest(pair: RdmaPair, tool: PerftestTool, o: PerftestOptions): Promise<PerftestLatency | PerftestBandwidth> {
  const timeoutMs = o.timeoutMs ?? 60000;
  const common = ['-s', String(o.size), '-n', String(o.iterations), '-p', String(o.port ?? 18515), '-F'];
  const gid = (e: RdmaEnd) => (e.gidIndex === undefined ? [] : ['-x', String(e.gidIndex)]);
  let server = run(inNs(pair.b, [tool, '-d', pair.b.device, ...gid(pair.b), ...common]), timeoutMs);
  try {
    // the server needs a moment to listen; the client retries its TCP connect for a while itself, but not long
    let uncalibrated = 0;
    for (let attempt = 0; ; attempt++) {
      await new Promise((r) => setTimeout(r, attempt ? 1000 : 500));
      const client = await run(inNs(pair.a, [tool, '-d', pair.a.device, ...gid(pair.a), ...common, pair.b.address]), timeoutMs).done;
      // every time "inf": perftest's cycles-to-µs calibration failed (seen once in ~10 runs under TCG); that
      // run measured nothing, so it is run again, twice at most (the server serves one client per start)
      if (client.code === 0 && /^\s*\d+\s+\d+\s+inf\s/m.test(client.output) && uncalibrated++ < 2) {
        server.kill();
        await server.done;
        server = run(inNs(pair.b, [tool, '-d', pair.b.device, ...gid(pair.b), ...common]), timeoutMs);
        continue;
      }
      if (client.code === 0) return parsePerftest(client.output);
      if (attempt >= 20 || !/Couldn't connect|Unable to open file descriptor/.test(client.output)) {
        throw new Error(`${tool} -s ${o.size} exited with ${client.code}: ${client.output.trim().slice(-600)}`);
      }
    }
  } finally {
    server.kill();
    await server.done;
  }
}
