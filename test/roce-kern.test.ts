// The kernel-side probes (bpf/roce-kern.bpf.c): they load here, a stage that cannot be probed is
// reported with the kernel's reason (this host has neither rxe nor kprobes), nothing stays
// loaded; and the cutting of stamps into per-operation step times.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { attachedResources } from '../harness/bpf/libbpf.js';
import { OP_PATH, OP_STEPS, RK_STAGES, attachRoceKern, attribute, kprobesUnavailable, type RkEvent, type StageName } from '../harness/bpf/roce-kern.js';
import { roceCapability } from '../harness/bpf/roce.js';
import { waitFor } from './helpers.js';

const cap = roceCapability();
const rkProgs = () => {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  return r.status === 0 ? (JSON.parse(r.stdout) as { name?: string }[]).filter((p) => p.name?.startsWith('fxh_rk_')).length : 0;
};

test('the probes load; every stage this kernel cannot probe is listed with the reason; nothing stays', { skip: cap.ok ? false : cap.reason }, async () => {
  const before = rkProgs();
  const k = attachRoceKern({ functions: { post: 'fxh_no_such_function' } });
  try {
    assert.equal(k.attached.length + k.skipped.length, RK_STAGES.length);
    const post = k.skipped.find((s) => s.stage === 'post');
    assert.ok(post, 'a function that does not exist cannot be probed');
    assert.equal(post.fn, 'fxh_no_such_function');
    const why = kprobesUnavailable();
    if (why) assert.ok(k.skipped.every((s) => s.reason === why), 'without kprobes every stage says so');
    else assert.match(post.reason, /ENOENT|No such/);
    k.start();
    assert.deepEqual(k.stop().filter((e) => !k.attached.some((a) => a.includes(e.stage))), []);
    assert.equal(k.lost(), 0);
  } finally {
    k.close();
  }
  assert.deepEqual(attachedResources().filter((r) => r.includes('roce-kern')), []);
  assert.ok(await waitFor(() => rkProgs() === before));
});

const ev = (stage: StageName, ts: number): RkEvent => ({ ts, stage, cpu: 0, pid: 1 });

test('stamps are cut into operations along the path; strays are passed over, unfinished operations dropped', () => {
  assert.equal(OP_STEPS.length, OP_PATH.length - 1);
  // one complete operation with a stray requester run and a stray completer before its time
  const one = OP_PATH.map((s, i) => ev(s, 1000 + i * 10 * (i + 1)));
  const strays = [ev('requester', 1031), ev('completer', 1045)];
  // a second operation that stops half way, then a third complete one
  const half = OP_PATH.slice(0, 5).map((s, i) => ev(s, 5000 + i));
  const three = OP_PATH.map((s, i) => ev(s, 9000 + i));
  const ops = attribute([...one, ...strays].sort((a, b) => a.ts - b.ts).concat(half, three));
  assert.equal(ops.length, 2);
  assert.deepEqual(ops[0], OP_PATH.slice(1).map((_, i) => (i + 1) * 10 * (i + 2) - i * 10 * (i + 1)));
  assert.deepEqual(ops[1], Array(OP_PATH.length - 1).fill(1));
  assert.deepEqual(attribute([]), []);
});
