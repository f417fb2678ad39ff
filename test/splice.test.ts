// The gateway's kernel splice (fxh_splice, harness/bpf/splice-map.ts) with real programs and real
// gateway/executor processes in the sockmap arm's cgroup: a spliced client gets verified answers
// from the executor without waking the gateway, every message is a spliced sk_msg redirect, the
// join is undone when either side goes, a function that holds the executor is dealt with although
// the gateway never saw the call, and a gateway without a splicer says why it refuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ARM_VARIANT, PLACER_ENV, armCapability, startArm, type Arm } from '../harness/bpf/arm.js';
import { cgroupProcs } from '../harness/bpf/cgroup.js';
import { loadCatalog } from '../harness/functions/catalog.js';
import { verifyOutput } from '../harness/functions/verify.js';
import { ProtocolClient } from '../harness/platform/client.js';
import { ownCgroups, waitFor } from './helpers.js';

const cap = armCapability('sockmap');
const skip = cap.ok ? false : `eBPF unavailable here: ${cap.reason}`;
process.env[PLACER_ENV] = String(process.pid);
const VARIANT = ARM_VARIANT.sockmap;

/** CPU time (ns) of every thread of a process, from the scheduler's own accounting. */
function cpuNs(pid: number): number {
  let t = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) t += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  return t;
}


let arm: Arm | null = null;
before(async () => {
  if (skip) return;
  assert.deepEqual(ownCgroups(), [], 'no cgroup of this test process before');
  arm = await startArm('sockmap');
});
after(async () => {
  if (skip) return;
  await arm?.stop();
  assert.deepEqual(ownCgroups(), [], 'the arm removed its cgroup');
});

const call = (c: ProtocolClient, fn: string, input: Uint8Array, timeoutMs = 5000) => c.invoke({ variant: VARIANT, fn, mode: 'warm', input, timeoutMs });

test('a spliced client gets verified answers from the executor; sk_msg splices both messages of every call; the gateway does not wake up', { skip }, async () => {
  const catalog = await loadCatalog();
  const sha = catalog.get('sha256');
  const relayed = await arm!.connect();
  const spliced = await arm!.connect({ splice: { timeoutMs: 5000 } });
  assert.equal(spliced.spliced, true);
  assert.equal(arm!.sockmap!.stats().spliceEntries, 1, 'one joined pair in fxh_splice');
  for (const c of [relayed, spliced]) {
    const input = sha.workload.input(7, 'small');
    const r = await call(c, 'sha256', input);
    assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
    verifyOutput(sha, input, r.output);
  }
  const N = 2000;
  const input = new Uint8Array(64);
  const measure = async (c: ProtocolClient) => {
    const s0 = arm!.sockmap!.stats();
    const g0 = cpuNs(arm!.gatewayPid);
    for (let i = 0; i < N; i++) assert.equal((await call(c, 'noop', input)).status, 'ok');
    const s1 = arm!.sockmap!.stats();
    return { spliced: s1.spliced - s0.spliced, runs: s1.skMsgRunCount - s0.skMsgRunCount, gatewayNs: cpuNs(arm!.gatewayPid) - g0 };
  };
  const viaSplice = await measure(spliced);
  const viaGateway = await measure(relayed);
  assert.equal(viaSplice.spliced, 2 * N, 'every request and every answer was a spliced redirect');
  assert.equal(viaSplice.runs, 2 * N, 'and nothing else ran sk_msg');
  assert.equal(viaGateway.spliced, 0, 'relayed calls are not spliced');
  assert.equal(viaGateway.runs, 4 * N, 'relayed: 4 redirected messages per call');
  // the relayed calls cost the gateway CPU on every call; the spliced ones must not
  assert.ok(viaGateway.gatewayNs > 5 * N * 1000, `relayed calls used ${viaGateway.gatewayNs} ns of gateway CPU`);
  assert.ok(viaSplice.gatewayNs < viaGateway.gatewayNs / 20, `spliced calls used ${viaSplice.gatewayNs} ns of gateway CPU (relayed: ${viaGateway.gatewayNs})`);
  spliced.close();
  relayed.close();
  assert.ok(await waitFor(() => arm!.sockmap!.stats().spliceEntries === 0), 'the join is undone when the client goes');
});

test('a function that holds the executor on a spliced connection: the client gives up after its timeout, the gateway replaces the executor, a new splice works', { skip }, async () => {
  const c = await arm!.connect({ splice: { timeoutMs: 300 } });
  const executors = () => cgroupProcs(arm!.cgroup.path).filter((p) => p !== arm!.gatewayPid);
  const t0 = Date.now();
  const r = await call(c, 'loop', new Uint8Array(0), 300);
  assert.equal(r.status, 'timeout');
  assert.match(Buffer.from(r.output).toString(), /did not answer within 300 ms on a spliced connection/);
  assert.ok(Date.now() - t0 < 3000, 'the client did not wait much past its timeout');
  const stuck = executors();
  assert.equal(stuck.length, 1, `one executor: ${stuck.join(', ')}`);
  assert.ok(await waitFor(() => !executors().includes(stuck[0]!), 5000), 'the stuck executor was replaced');
  assert.ok(await waitFor(() => arm!.sockmap!.stats().spliceEntries === 0));
  const again = await arm!.connect({ splice: { timeoutMs: 2000 } });
  const ok = await call(again, 'noop', new Uint8Array(8), 2000);
  assert.equal(ok.status, 'ok', Buffer.from(ok.output).toString());
  again.close();
});

test('a call longer than the bound the connection was spliced with is refused by the client', { skip }, async () => {
  const c = await arm!.connect({ splice: { timeoutMs: 100 } });
  await assert.rejects(call(c, 'noop', new Uint8Array(0), 5000), /at most 100 ms/);
  c.close();
});

test('the executor dying closes the spliced client connection and undoes the join', { skip }, async () => {
  const c = await arm!.connect({ splice: { timeoutMs: 5000 } });
  assert.equal((await call(c, 'noop', new Uint8Array(8))).status, 'ok');
  const executor = cgroupProcs(arm!.cgroup.path).filter((p) => p !== arm!.gatewayPid);
  assert.equal(executor.length, 1);
  process.kill(executor[0]!, 'SIGKILL');
  await assert.rejects(
    (async () => {
      await waitFor(() => !cgroupProcs(arm!.cgroup.path).includes(executor[0]!));
      await new Promise((r) => setTimeout(r, 100));
      await call(c, 'noop', new Uint8Array(8));
    })(),
    /connection closed|EPIPE|ECONNRESET/,
  );
  assert.ok(await waitFor(() => arm!.sockmap!.stats().spliceEntries === 0), 'no join left');
});

test('a client whose socket was created outside the platform cgroup is refused: the kernel could not deliver to it', { skip }, async () => {
  const outside = await ProtocolClient.connect(arm!.endpoint);
  try {
    await assert.rejects(outside.splice(VARIANT, 1000), /refused to splice .*the client's socket \(127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\) is not in the platform's SOCKHASH/);
    assert.equal(outside.spliced, false);
    // and it is still served, relayed over plain TCP
    assert.equal((await call(outside, 'noop', new Uint8Array(8))).status, 'ok');
    assert.equal(arm!.sockmap!.stats().spliceEntries, 0);
  } finally {
    outside.close();
  }
});

// stops the shared arm: keep it the last test that uses it
test('an executor a function holds when the arm stops is killed with it, not left to run outside the cgroup', { skip }, async () => {
  const own = arm!;
  const c = await own.connect({ splice: { timeoutMs: 60_000 } });
  const pending = call(c, 'loop', new Uint8Array(0), 60_000).catch((e: Error) => e);
  assert.ok(await waitFor(() => cgroupProcs(own.cgroup.path).some((p) => p !== own.gatewayPid)));
  const executor = cgroupProcs(own.cgroup.path).find((p) => p !== own.gatewayPid)!;
  await new Promise((r) => setTimeout(r, 200)); // the loop is running now
  await own.stop();
  assert.match(String(await pending), /connection closed|ECONNRESET/);
  assert.ok(await waitFor(() => !fs.existsSync(`/proc/${executor}`), 2000), `executor ${executor} still runs`);
  assert.equal(fs.existsSync(own.cgroup.path), false, 'its cgroup is gone');
});

test('a gateway without a splicer (the tcp arm) refuses to splice and says why', { skip: skip || (armCapability('tcp').ok ? false : 'no cgroup') }, async () => {
  const tcp = await startArm('tcp');
  try {
    await assert.rejects(tcp.connect({ splice: { timeoutMs: 1000 } }), /refused to splice to wasm\+tcp \(unavailable\): this gateway does not splice connections: it was started without a splicer/);
  } finally {
    await tcp.stop();
  }
});
