// The rdma-ebpf experiment's bookkeeping, without a guest: what perftest posts per direction, the
// rows made of a guest phase, and the report's proof/loss/overhead lines — equal only when equal.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ROCE_CLASSES, NAK_CODES, type QpCounters } from '../harness/bpf/roce-layout.js';
import type { GuestPhase } from '../harness/experiments/rdma-ebpf-guest.js';
import { phaseRows, posted } from '../harness/experiments/rdma-ebpf-rows.js';
import { rdmaEbpfReport } from '../harness/experiments/rdma-ebpf-report.js';
import { guestRxePair } from '../harness/experiments/rdma-ebpf-net.js';
import type { RawRow } from '../harness/results/schema.js';

const ADDR = { client: '10.77.0.1', server: '10.77.0.2' };
const zero = () => Object.fromEntries(ROCE_CLASSES.map((c) => [c, 0])) as QpCounters['pkts'];

function qp(address: string, qpn: number, set: Partial<Record<'ops' | 'bytes' | 'pkts', Partial<QpCounters['pkts']>>> & Partial<Omit<QpCounters, 'ops' | 'bytes' | 'pkts'>> = {}): QpCounters {
  const { ops, bytes, pkts, ...rest } = set;
  return {
    address, qpn, pkts: { ...zero(), ...pkts }, ops: { ...zero(), ...ops }, bytes: { ...zero(), ...bytes }, ackReq: 0, psnMissing: 0, gapEvents: 0, psnBehind: 0, retransmitted: 0, acks: 0,
    naks: Object.fromEntries(NAK_CODES.map((c) => [c, 0])) as QpCounters['naks'], rnrNaks: 0, rtt: { count: 0, sumNs: 0, minNs: 0, maxNs: 0, hist: [] }, firstNs: 0, lastNs: 0, ...rest,
  } as QpCounters;
}

function phase(p: Omit<Partial<GuestPhase>, 'run'> & { run: Partial<GuestPhase['run']> }, qps: QpCounters[]): GuestPhase {
  return {
    phase: 'proof', arm: 'generic', ...p,
    run: { kind: 'write_lat', iters: 100, size: 64, clientExit: 0, serverExit: 0, clientQpn: 17, serverQpn: 18, samplesUs: [], wallMs: 1, clientTail: '', serverTail: '', ...p.run },
    counters: { global: {} as never, malformed: 0, qps },
  } as GuestPhase;
}

test('what each perftest posts, by the direction its packets go', () => {
  assert.deepEqual(posted('write_lat', 10, 64), [{ dir: 'to_server', cls: 'write', ops: 10, bytes: 640 }, { dir: 'to_client', cls: 'write', ops: 10, bytes: 640 }]);
  assert.deepEqual(posted('read_lat', 10, 64), [{ dir: 'to_server', cls: 'read_req', ops: 10, bytes: 0 }, { dir: 'to_client', cls: 'read_resp', ops: 10, bytes: 640 }]);
  assert.deepEqual(posted('write_bw', 5, 4096), [{ dir: 'to_server', cls: 'write', ops: 5, bytes: 20480 }]);
});

test('proof lines say equal only when the per-QP counters match what was posted, looked up by address and QPN', () => {
  const good = phase({ run: {} }, [qp(ADDR.server, 18, { ops: { write: 100 }, bytes: { write: 6400 } }), qp(ADDR.client, 17, { ops: { write: 100 }, bytes: { write: 6400 } })]);
  // the counts are right but on the wrong QPN (the server's QP is 18): must not pass
  const wrongQp = phase({ run: { kind: 'send_lat' } }, [qp(ADDR.server, 17, { ops: { send: 100 }, bytes: { send: 6400 } }), qp(ADDR.client, 17, { ops: { send: 100 }, bytes: { send: 6399 } })]);
  const rows = [...phaseRows(good, ADDR, 'test'), ...phaseRows(wrongQp, ADDR, 'test')].map((r): RawRow => ({ experiment: 'rdma-ebpf', ...r }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fxh-${process.pid}-rdmarep-`));
  try {
    const lines = rdmaEbpfReport({ raw: rows, summary: [], skips: [] }, dir);
    const proof = lines.filter((l) => l.startsWith('proof'));
    assert.equal(proof.length, 4);
    assert.match(proof.find((l) => /write_lat to_server/.test(l))!, /posted 100 ops, 6400 B; eBPF per-QP 100 ops, 6400 B \(equal\)/);
    assert.match(proof.find((l) => /write_lat to_client/.test(l))!, /\(equal\)/);
    assert.match(proof.find((l) => /send_lat to_server/.test(l))!, /eBPF per-QP 0 ops, 0 B \(DIFFER\)/);
    assert.match(proof.find((l) => /send_lat to_client/.test(l))!, /6399 B \(DIFFER\)/);
    assert.ok(fs.readFileSync(path.join(dir, 'rdma-ebpf-report.txt'), 'utf8').includes('(DIFFER)'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('loss lines set the drops against PSN gaps and NAKs; overhead lines compare arms', () => {
  const rule = { kind: 'nth' as const, qpn: 'any' as const, everyN: 50 };
  const lossy = phase({ phase: 'loss', rule, run: { kind: 'write_bw', iters: 1000, size: 1024, bwMBps: 1.5 }, loss: { selected: 1040, dropped: 20, drops: [] } }, [
    qp(ADDR.server, 18, { ops: { write: 1000 }, psnMissing: 20, gapEvents: 20, psnBehind: 20, retransmitted: 20 }),
    qp(ADDR.client, 17, { naks: { psn_seq_error: 20, invalid_request: 0, remote_access_error: 0, remote_op_error: 0, invalid_rd_request: 0 } }),
  ]);
  const twin = phase({ phase: 'loss-baseline', run: { kind: 'write_bw', iters: 1000, size: 1024, bwMBps: 2 } }, [qp(ADDR.server, 18, { ops: { write: 1000 } })]);
  const over = (arm: GuestPhase['arm'], us: number[], block: number) => phase({ phase: 'overhead', arm, block, run: { samplesUs: us } }, []);
  const rows = [lossy, twin, over('detached', [10, 11, 12, 10, 11, 12, 10], 0), over('generic', [20, 21, 22, 20, 21, 22, 20], 1)].flatMap((p) => phaseRows(p, ADDR, 'test')).map((r): RawRow => ({ experiment: 'rdma-ebpf', ...r }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fxh-${process.pid}-rdmarep-`));
  try {
    const lines = rdmaEbpfReport({ raw: rows, summary: [], skips: [] }, dir);
    const loss = lines.filter((l) => l.startsWith('loss'));
    assert.match(loss[0]!, /every 50th request to the server: dropped 20; PSNs missing 20 in 20 gaps \(equal\); NAKs \(PSN sequence error\) 20 \(one per gap\)/);
    assert.match(loss[0]!, /completed: client exit 0/);
    const acct = lines.find((l) => /loss accounting/.test(l))!;
    assert.match(acct, /beyond those posted 40 = dropped 20 \+ retransmissions the telemetry saw 20 \(equal\); every dropped PSN arrived later \(equal: 1000 of 1000\)/);
    // one resend fewer than the drops need: not equal
    const off = rows.map((r) => (r.metric === 'loss_selected' ? { ...r, value: 1039 } : r));
    assert.match(rdmaEbpfReport({ raw: off, summary: [], skips: [] }, dir).find((l) => /loss accounting/.test(l))!, /39 = dropped 20 \+ retransmissions the telemetry saw 20 \(DIFFER\)/);
    assert.match(loss[1]!, /1\.50 MB\/s with loss vs 2\.00 MB\/s lossless \(-25\.0%\)/);
    const o = lines.filter((l) => l.startsWith('overhead'));
    assert.equal(o.length, 1, 'only the generic-vs-detached pair has both sides');
    assert.match(o[0]!, /generic vs detached .*: 21\.00 vs 11\.00 us median; CI needs at least 2 blocks a side \(1\/1\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the overhead CI is taken over block medians once there are two blocks a side', () => {
  const over = (arm: GuestPhase['arm'], us: number[], block: number) => phase({ phase: 'overhead', arm, block, run: { samplesUs: us } }, []);
  const blocks = [over('detached', [10, 10, 10], 0), over('generic', [20, 20, 20], 1), over('generic', [22, 22, 22], 2), over('detached', [11, 11, 11], 3)];
  const rows = blocks.flatMap((p) => phaseRows(p, ADDR, 'test')).map((r): RawRow => ({ experiment: 'rdma-ebpf', ...r }));
  assert.deepEqual(rows.filter((r) => r.metric === 'write_latency_block_median').map((r) => [r.value, r.iteration]), [[10, 0], [20, 1], [22, 2], [11, 3]]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fxh-${process.pid}-rdmarep-`));
  try {
    const line = rdmaEbpfReport({ raw: rows, summary: [], skips: [] }, dir).find((l) => l.startsWith('overhead'))!;
    assert.match(line, /ratio of block medians 2\.000 \(95% CI \d\.\d+\.\.\d\.\d+ over 2\/2 blocks\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the guest half finds its rxe pair from the guest environment and rdma link, or says what is missing', () => {
  const env = { FXH_GUEST_DEV_A: 'rxe_a', FXH_GUEST_DEV_B: 'rxe_b', FXH_GUEST_ADDR_A: '10.77.0.1', FXH_GUEST_ADDR_B: '10.77.0.2' };
  const links = 'link rxe_a/1 state ACTIVE physical_state LINK_UP netdev fxa0 \nlink rxe_b/1 state ACTIVE physical_state LINK_UP netdev fxb0 \n';
  assert.deepEqual(guestRxePair(env, links), { devA: 'rxe_a', devB: 'rxe_b', netdevA: 'fxa0', netdevB: 'fxb0', addrA: '10.77.0.1', addrB: '10.77.0.2' });
  assert.throws(() => guestRxePair({}, links), /FXH_GUEST_DEV_A\/B and FXH_GUEST_ADDR_A\/B are not set/);
  assert.throws(() => guestRxePair(env, links.split('\n')[0]!), /rdma link shows no rxe_b/);
  assert.throws(() => guestRxePair(env, links.replace('rxe_b/1 state ACTIVE', 'rxe_b/1 state DOWN')), /rxe_b is DOWN, not ACTIVE/);
});
