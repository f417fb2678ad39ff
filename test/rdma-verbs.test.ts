// Verbs for real, inside ONE SoftRoCE guest (test/guest/rdma-suite.ts runs both sides there):
// SEND/RECV, WRITE, READ; a wrong rkey, a read outside the registered region and a vanished peer,
// each a clear error naming the QP and the work request, with the registrations freed; the rdma: link
// carrying frames and one-sided region reads (also while the owner's thread is blocked), with
// revocation on unregister, a reader or an owner vanishing mid-read; the micro-benchmark driver beside perftest (no speed targets: numbers are
// printed as diagnostics, emulated CPU).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildDir } from '../harness/paths.js';
import { guestUnavailable, runInGuest } from '../harness/rdma/guest.js';
import { medianNs, type MicrobenchRow } from '../harness/rdma/microbench.js';

const unavailable = guestUnavailable();

interface Res {
  mrs: number;
  qps: number;
}
type Step = Record<string, unknown> & { thrown?: string; before?: Res; after?: Res; qpn?: number; error?: string };

test('verbs and the rdma: link in the SoftRoCE guest', { skip: unavailable ?? false, timeout: 600_000 }, async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-rdma-verbs-'));
  try {
    const r = await runInGuest({ command: [process.execPath, path.join(buildDir, 'test', 'guest', 'rdma-suite.js'), out], outDir: out, timeoutMs: 560_000 });
    const sides = () => (fs.existsSync(path.join(out, 'rdma-sides.txt')) ? fs.readFileSync(path.join(out, 'rdma-sides.txt'), 'utf8').slice(-4000) : r.output.slice(-4000));
    assert.equal(r.exitCode, 0, r.output.slice(-3000));
    t.diagnostic(`guest: ${r.accel}, booted in ${(r.bootMs / 1000).toFixed(1)} s`);
    const got = JSON.parse(fs.readFileSync(path.join(out, 'rdma-client.json'), 'utf8')) as Record<string, Step>;
    for (const [name, s] of Object.entries(got)) assert.equal(s.thrown, undefined, `${name}: ${s.thrown}\n${sides()}`);

    const basic = got.basic!;
    assert.equal(basic.peerSaid, 'world', 'SEND/RECV both ways');
    assert.equal(basic.peerSawWrite, 'landed', "the WRITE landed in the peer's memory");
    assert.equal(basic.readBack, true, 'the READ brought the written bytes back');
    assert.ok(basic.before!.mrs >= 1 && basic.before!.qps >= 1, `the kernel listed our registrations and QP: ${JSON.stringify(basic.before)}`);
    assert.deepEqual(basic.after, { mrs: 0, qps: 0 }, 'close freed them');

    const named = (s: Step, op: string, wrId: number) => new RegExp(`^QP 0x${s.qpn!.toString(16)}: work request ${op} \\(wr_id ${wrId}\\) failed: `);
    const rkey = got.wrongRkey!;
    assert.match(String(rkey.error), named(rkey, 'RDMA_WRITE', 1));
    assert.match(String(rkey.error), /remote access error/);
    const outside = got.outside!;
    assert.match(String(outside.error), named(outside, 'RDMA_READ', 2));
    assert.match(String(outside.error), /remote (access|invalid request) error/);
    const gone = got.remoteGone!;
    assert.match(String(gone.error), named(gone, 'RDMA_WRITE', 1));
    // rxe's retries need not give up on a vanished QP; the lifeline's end flushes the request
    assert.match(String(gone.error), /Flushed Error.*\(the peer's connection to QP 0x[0-9a-f]+ closed|transport retry counter exceeded/);
    for (const s of [rkey, outside, gone]) {
      assert.ok(s.before === undefined || s.before.mrs >= 1, JSON.stringify(s.before));
      assert.deepEqual(s.after, { mrs: 0, qps: 0 }, `the error's teardown freed the registrations and the QP: ${JSON.stringify(s)}`);
    }

    const link = got.link!;
    assert.deepEqual(link.echoes, { 10: true, 70000: true, 5242880: true, concurrent: true }, 'frames of one, several and many chunks, and 50 in flight');
    for (const k of ['readWhole', 'readPartial', 'readSub', 'concurrentReads', 'blockedRead']) assert.equal(link[k], true, k);
    assert.equal(link.readEmpty, 0);
    assert.match(String(link.outOfRange), /refused a read of \[1048566, 1048577\).*outside region "pattern" of 1048576 bytes/);
    assert.match(String(link.unknown), /no region "no-such-region" is registered here/);
    assert.match(String(link.tooBig), /at most \d+ bytes per read/);
    // the owner's thread was blocked for 3 s right after answering: the read finished inside that
    // time, the next frame had to wait for its end
    const readMs = link.blockedReadMs as number;
    const echoMs = link.echoAfterBlockMs as number;
    assert.ok(readMs < 2000 && readMs + echoMs > 2500, `read ${readMs} ms, then an echo ${echoMs} ms`);
    assert.equal(link.unregistered, 'true');
    assert.match(String(link.afterUnregister), /no region "pattern" is registered here/);
    assert.equal(link.closeWhy, 'null');
    assert.match(String(link.readAfterClose), /the link to rdma:.* is closed/);
    assert.deepEqual(link.after, { mrs: 0, qps: 0 });

    // a reader that disappears mid-read leaves the owner serving; an owner that dies fails each read, naming it
    const readerGone = got.readerGone!;
    assert.equal((readerGone.rejected as string[]).length, 4);
    for (const m of readerGone.rejected as string[]) assert.match(m, /^the link to rdma:10\.77\.0\.2:\d+ ended (during a read of \[0, 100000\) of region "sub"|while asking for a region)/);
    assert.equal(readerGone.readAfter, true);
    assert.equal(readerGone.bye, 'bye');
    const ownerGone = got.ownerGone!;
    assert.ok((ownerGone.rejected as string[]).length > 0, 'at least the last read was cut off');
    for (const m of ownerGone.rejected as string[]) assert.match(m, /^the link to rdma:10\.77\.0\.2:\d+ ended during a read of \[0, 33554432\) of region "big": the peer's connection to QP 0x[0-9a-f]+ closed/);
    assert.deepEqual(ownerGone.after, { mrs: 0, qps: 0 });

    const rows = JSON.parse(fs.readFileSync(path.join(out, 'microbench.json'), 'utf8')) as MicrobenchRow[];
    const row = (source: string, metric: string, poll = 'busy') => rows.find((x) => x.source === source && x.metric === metric && x.size === 64 && x.poll === poll);
    for (const [source, metric, poll] of [['harness', 'write_latency'], ['harness', 'read_latency'], ['harness', 'read_latency', 'js'], ['perftest', 'write_latency'], ['perftest', 'read_latency']] as const) {
      const x = row(source, metric, poll);
      assert.ok(x && !x.error, `${source} ${metric} ${poll ?? 'busy'}: ${x?.error}`);
    }
    const w = row('harness', 'write_latency')!;
    assert.equal(w.samplesNs!.length, 100);
    assert.ok(w.samplesNs!.every((s) => s > 0));
    const pw = row('perftest', 'write_latency')!.perftest!;
    assert.ok(pw.kind === 'latency' && pw.bytes === 64 && pw.tTypicalUs > 0);
    t.diagnostic(`64 B write latency (preliminary, emulated CPU): harness median ${(medianNs(w) / 1000).toFixed(1)} us, ib_write_lat typical ${pw.tTypicalUs} us`);
    t.diagnostic(`64 B read latency: C loop ${(medianNs(row('harness', 'read_latency')!) / 1000).toFixed(1)} us, JS post+poll ${(medianNs(row('harness', 'read_latency', 'js')!) / 1000).toFixed(1)} us`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
