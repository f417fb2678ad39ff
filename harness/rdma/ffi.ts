// The koffi binding of the verbs shim (harness/rdma/shim, built by the bootstrap into build/rdma),
// loaded lazily the way harness/bpf/libbpf/ffi.ts loads libbpf.
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { buildDir } from '../paths.js';

export const SHIM_PATH = path.join(buildDir, 'rdma', 'libfxh_verbs.so');

export type Ptr = unknown; // koffi external pointer (fxh_conn *)
type Cb<T> = (err: unknown, value: T) => void;
interface AsyncFn<A extends unknown[], R> {
  (...args: A): R;
  async(...args: [...A, Cb<R>]): void;
}

export interface Shim {
  fxh_devices(names: Buffer, cap: number): number;
  fxh_wait: AsyncFn<[ready: BigUint64Array, max: number, timeoutMs: number], number>;
  fxh_wake(): void;
  fxh_open(id: number, ip: string, depth: number, err: Buffer, errlen: number): Ptr | null;
  fxh_local_info(c: Ptr, out: Buffer): number;
  fxh_ready(c: Ptr, peer: Buffer, err: Buffer, errlen: number): number;
  fxh_watch(c: Ptr, err: Buffer, errlen: number): number;
  fxh_qp_error(c: Ptr): number;
  fxh_dev_name(c: Ptr): string;
  fxh_qpn(c: Ptr): number;
  fxh_conn_close(c: Ptr): void;
  fxh_reg(c: Ptr, addr: Uint8Array, len: number, remote: number, keys: Uint32Array, err: Buffer, errlen: number): number;
  fxh_dereg(c: Ptr, slot: number): number;
  fxh_mr_addr(c: Ptr, slot: number): bigint;
  fxh_mr_count(c: Ptr): number;
  fxh_post_recv(c: Ptr, wrId: bigint, slot: number, offset: number, len: number): number;
  fxh_post(c: Ptr, op: number, wrId: bigint, slot: number, offset: number, len: number, raddr: bigint, rkey: number, signaled: number): number;
  fxh_poll(c: Ptr, out: BigUint64Array, max: number): number;
  fxh_rearm(c: Ptr): number;
  fxh_wc_status_str(s: number): string;
  fxh_qp_state(c: Ptr): number;
  fxh_bench: AsyncFn<
    [c: Ptr, kind: number, server: number, slot: number, size: number, raddr: bigint, rkey: number, warmup: number, iters: number, depth: number, event: number, samples: BigUint64Array, timeoutMs: number, err: Buffer, errlen: number],
    number
  >;
  fxh_op: AsyncFn<[c: Ptr, op: number, slot: number, offset: number, len: number, raddr: bigint, rkey: number, timeoutMs: number, err: Buffer, errlen: number], number>;
}

let shim: Shim | null = null;
let shimError: string | null = null;

function declare(lib: ReturnType<typeof koffi.load>): Shim {
  koffi.opaque('fxh_conn');
  const f = (sig: string) => lib.func(sig);
  const s = {
    fxh_devices: f('int fxh_devices(char *names, int cap)'),
    fxh_wait: f('int fxh_wait(uint64_t *ready, int max, int timeout_ms)'),
    fxh_wake: f('void fxh_wake(void)'),
    fxh_open: f('fxh_conn *fxh_open(int id, const char *ip, int depth, char *err, int errlen)'),
    fxh_local_info: f('int fxh_local_info(fxh_conn *c, uint8_t *out)'),
    fxh_ready: f('int fxh_ready(fxh_conn *c, const uint8_t *peer, char *err, int errlen)'),
    fxh_watch: f('int fxh_watch(fxh_conn *c, char *err, int errlen)'),
    fxh_qp_error: f('int fxh_qp_error(fxh_conn *c)'),
    fxh_dev_name: f('const char *fxh_dev_name(fxh_conn *c)'),
    fxh_qpn: f('uint32_t fxh_qpn(fxh_conn *c)'),
    fxh_conn_close: f('void fxh_conn_close(fxh_conn *c)'),
    fxh_reg: f('int fxh_reg(fxh_conn *c, void *addr, size_t len, int remote, uint32_t *keys, char *err, int errlen)'),
    fxh_dereg: f('int fxh_dereg(fxh_conn *c, int slot)'),
    fxh_mr_addr: f('uint64_t fxh_mr_addr(fxh_conn *c, int slot)'),
    fxh_mr_count: f('int fxh_mr_count(fxh_conn *c)'),
    fxh_post_recv: f('int fxh_post_recv(fxh_conn *c, uint64_t wr_id, int slot, uint64_t offset, uint32_t len)'),
    fxh_post: f('int fxh_post(fxh_conn *c, int op, uint64_t wr_id, int slot, uint64_t offset, uint32_t len, uint64_t raddr, uint32_t rkey, int signaled)'),
    fxh_poll: f('int fxh_poll(fxh_conn *c, uint64_t *out, int max)'),
    fxh_rearm: f('int fxh_rearm(fxh_conn *c)'),
    fxh_wc_status_str: f('const char *fxh_wc_status_str(int s)'),
    fxh_qp_state: f('int fxh_qp_state(fxh_conn *c)'),
    fxh_bench: f(
      'int fxh_bench(fxh_conn *c, int kind, int server, int slot, uint32_t size, uint64_t raddr, uint32_t rkey, int warmup, int iters, int depth, int event, uint64_t *samples, int timeout_ms, char *err, int errlen)',
    ),
    fxh_op: f('int fxh_op(fxh_conn *c, int op, int slot, uint64_t offset, uint32_t len, uint64_t raddr, uint32_t rkey, int timeout_ms, char *err, int errlen)'),
  };
  return s as unknown as Shim;
}

/** Loads the shim once; the reason when it cannot (not built, rdma-core missing). */
export function tryShim(): { shim: Shim } | { error: string } {
  if (shim) return { shim };
  if (shimError) return { error: shimError };
  if (!fs.existsSync(SHIM_PATH)) {
    shimError = `the verbs shim ${SHIM_PATH} is not built (the bootstrap builds it when libibverbs-dev is installed: node harness/setup/bootstrap.mjs)`;
    return { error: shimError };
  }
  try {
    shim = declare(koffi.load(SHIM_PATH));
    return { shim };
  } catch (e) {
    shimError = `cannot load ${SHIM_PATH}: ${(e as Error).message} (apt-get install libibverbs1 ibverbs-providers)`;
    return { error: shimError };
  }
}

export function S(): Shim {
  const r = tryShim();
  if ('error' in r) throw new Error(r.error);
  return r.shim;
}

/** An error buffer for one call (calls may run on koffi's worker threads). */
export function errBuf(): Buffer {
  return Buffer.alloc(512);
}

export function errText(b: Buffer): string {
  const n = b.indexOf(0);
  return b.toString('utf8', 0, n < 0 ? b.length : n);
}

/** Calls f.async and resolves with its result. */
export function callAsync<A extends unknown[], R>(fn: AsyncFn<A, R>, ...args: A): Promise<R> {
  return new Promise((resolve, reject) => fn.async(...args, (err: unknown, v: R) => (err ? reject(err) : resolve(v))));
}
