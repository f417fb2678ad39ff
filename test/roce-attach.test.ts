// The RoCEv2 telemetry and loss programs attached to a real veth pair between two network
// namespaces of this test, with RoCEv2-formatted UDP datagrams sent through the kernel's stack
// (this host has no RDMA device; the SoftRoCE guest runs the real transport). The counters must
// equal what was sent, the loss program must drop exactly what its rule selects (a UDP receiver
// behind it counts what arrived), and nothing may stay attached: after a run, a failure, a
// refused attach, SIGINT or SIGKILL of the process that attached.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { attachedResources } from '../harness/bpf/libbpf.js';
import { buildDir } from '../harness/paths.js';
import { attachRoce, withRoceTelemetry } from '../harness/bpf/roce-attach.js';
import { OP, roceUdpPayload, type RoceSpec } from '../harness/bpf/roce-packet.js';
import { roceCapability } from '../harness/bpf/roce.js';
import { netnsAvailable } from '../harness/platform/nodes/fabric.js';
import { waitFor } from './helpers.js';

const cap = roceCapability();
const ns = netnsAvailable();
const skip = !cap.ok ? `eBPF unavailable here: ${cap.reason}` : !ns.ok ? ns.reason : false;

const NS_A = `fxh-${process.pid}-roce-a`;
const NS_B = `fxh-${process.pid}-roce-b`;
const A = '10.77.0.1', B = '10.77.0.2';
const TARGETS = [{ netdev: 'ra0', netns: NS_A }, { netdev: 'rb0', netns: NS_B }];

function ip(...args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
/** the XDP program ids attached to a device ("" when none) */
const xdpOn = (netns: string, dev: string) => /prog\/xdp id (\d+)/.exec(ip('-n', netns, '-d', 'link', 'show', dev))?.[1] ?? '';
const nothingAttached = () => xdpOn(NS_A, 'ra0') === '' && xdpOn(NS_B, 'rb0') === '';

/** sends each payload as one UDP datagram from `netns` to dst:4791, 2 ms apart */
function sendFrom(netns: string, dst: string, payloads: Buffer[]): void {
  const script = `const d=require('dgram').createSocket('udp4');const p=process.argv[1].split(',');let i=0;
const next=()=>{if(i===p.length){d.close();return;}d.send(Buffer.from(p[i++],'hex'),4791,process.argv[2],(e)=>{if(e)throw e;setTimeout(next,2);});};next();`;
  const r = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script, payloads.map((p) => p.toString('hex')).join(','), dst], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** a UDP receiver on port 4791 in `netns`: how many datagrams arrived */
async function receiver(netns: string): Promise<{ count(): Promise<number> }> {
  const script = `const d=require('dgram').createSocket('udp4');let n=0;d.on('message',()=>n++);d.bind(4791,()=>console.log('ready'));process.stdin.on('data',()=>{console.log(n);process.exit(0);});`;
  const p = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: p.stdout! });
  const it = lines[Symbol.asyncIterator]();
  assert.equal((await it.next()).value, 'ready');
  return {
    async count() {
      p.stdin!.write('x');
      const n = Number((await it.next()).value);
      await new Promise((r) => (p.exitCode === null ? p.once('exit', r) : r(null)));
      return n;
    },
  };
}

const write = (psn: number, extra: Partial<RoceSpec> = {}) => roceUdpPayload({ opcode: OP.WRITE_ONLY, dqpn: 17, psn, payload: 100, ackReq: true, ...extra });

describe('RoCEv2 telemetry on a real veth', { skip }, () => {
  before(() => {
    ip('netns', 'add', NS_A);
    ip('netns', 'add', NS_B);
    ip('-n', NS_A, 'link', 'add', 'ra0', 'type', 'veth', 'peer', 'name', 'rb0', 'netns', NS_B);
    ip('-n', NS_A, 'addr', 'add', `${A}/24`, 'dev', 'ra0');
    ip('-n', NS_B, 'addr', 'add', `${B}/24`, 'dev', 'rb0');
    ip('-n', NS_A, 'link', 'set', 'ra0', 'up');
    ip('-n', NS_B, 'link', 'set', 'rb0', 'up');
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', NS_A]);
    spawnSync('ip', ['netns', 'del', NS_B]);
    assert.deepEqual(attachedResources().filter((r) => /roce|xdp/.test(r)), []);
  });

  test('the counters equal what crossed the veth, both directions, malformed apart', async () => {
    const c = await withRoceTelemetry(TARGETS, async (s) => {
      assert.equal(s.attachments.length, 2);
      assert.notEqual(xdpOn(NS_A, 'ra0'), '');
      const psns = [...Array(20).keys()].filter((p) => p !== 5 && p !== 6);
      sendFrom(NS_A, B, [...psns.map((p) => write(p)), write(0).subarray(0, 6)]);
      sendFrom(NS_B, A, psns.slice(0, 10).map((p) => roceUdpPayload({ opcode: OP.ACK, dqpn: 18, psn: p })));
      return s.telemetry.counters();
    });
    assert.ok(nothingAttached(), 'detached after the run');
    const [toA, toB] = [c.qps.find((q) => q.address === A), c.qps.find((q) => q.address === B)];
    assert.equal(c.qps.length, 2, JSON.stringify(c.qps.map((q) => [q.address, q.qpn])));
    assert.equal(toB!.qpn, 17);
    assert.equal(toB!.pkts.write, 18);
    assert.equal(toB!.ops.write, 18);
    assert.equal(toB!.bytes.write, 1800);
    assert.equal(toB!.ackReq, 18);
    assert.equal(toB!.psnMissing, 2);
    assert.equal(toA!.qpn, 18);
    assert.equal(toA!.acks, 10);
    assert.equal(toA!.rtt.count, 10, 'each ACK closed the stamp of the write it acknowledges');
    assert.equal(c.global.trunc_bth, 1);
    assert.equal(c.global.roce, 28);
  });

  test('loss in front of the telemetry drops exactly every Nth request; the receiver gets the rest', async () => {
    const rx = await receiver(NS_B);
    const r = await withRoceTelemetry(
      TARGETS,
      async (s) => {
        sendFrom(NS_A, B, [...Array(20).keys()].map((p) => write(p)));
        sendFrom(NS_B, A, [roceUdpPayload({ opcode: OP.ACK, dqpn: 17, psn: 3 })]); // to a QP 17 too, but not a request
        return { c: s.telemetry.counters(), drops: s.loss!.drops(), rule: s.loss!.ruleStats(0) };
      },
      { loss: [{ kind: 'nth', qpn: 17, everyN: 4, requestsOnly: true }] },
    );
    assert.equal(await rx.count(), 15);
    assert.deepEqual(r.drops.map((d) => d.psn), [3, 7, 11, 15, 19]);
    assert.deepEqual(r.rule, { selected: 20, dropped: 5 });
    const toB = r.c.qps.find((q) => q.address === B)!;
    assert.equal(toB.pkts.write, 15);
    assert.equal(toB.psnMissing, 4, 'the last drop (19) has no successor');
    assert.equal(r.c.qps.find((q) => q.address === A)!.acks, 1);
    assert.ok(nothingAttached());
  });

  test('generic XDP and the do-nothing program attach as well; generic mode counts the same', async () => {
    const c = await withRoceTelemetry(
      TARGETS,
      (s) => {
        assert.match(s.attachments.join('\n'), /XDP generic bpf_link/);
        assert.match(ip('-n', NS_B, '-d', 'link', 'show', 'rb0'), /xdpgeneric/);
        sendFrom(NS_A, B, [0, 1, 2].map((p) => write(p)));
        return s.telemetry.counters();
      },
      { xdpMode: 'generic' },
    );
    assert.equal(c.qps.find((q) => q.address === B)?.bytes.write, 300);
    assert.ok(nothingAttached());
    await withRoceTelemetry(TARGETS[1]!, (s) => {
      assert.match(s.attachments[0]!, /^fxh_roce_pass -> /);
      sendFrom(NS_A, B, [write(0)]);
      assert.equal(s.telemetry.counters().global.seen, 0, 'the do-nothing program counts nothing');
    }, { program: 'pass' });
    assert.throws(() => attachRoce(TARGETS, { program: 'pass', loss: [] }), /exclude each other/);
    assert.ok(nothingAttached());
  });

  test('a failing body, a missing netdev or namespace, a busy netdev: a clear error and nothing left', async () => {
    await assert.rejects(
      withRoceTelemetry(TARGETS, () => {
        assert.notEqual(xdpOn(NS_B, 'rb0'), '');
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.ok(nothingAttached());
    assert.throws(() => attachRoce([TARGETS[0]!, { netdev: 'nosuch0', netns: NS_B }]), /no network device "nosuch0" in netns fxh-\d+-roce-b/);
    assert.ok(nothingAttached(), 'the first target was released when the second failed');
    assert.throws(() => attachRoce({ netdev: 'ra0', netns: `fxh-${process.pid}-none` }), /network namespace fxh-\d+-none: no \/run\/netns/);
    assert.throws(() => attachRoce([]), /no netdev given/);
    const first = attachRoce(TARGETS[1]!);
    try {
      const id = xdpOn(NS_B, 'rb0');
      assert.notEqual(id, '');
      assert.throws(() => attachRoce(TARGETS[1]!), /rb0 in netns fxh-\d+-roce-b already has an XDP program/);
      assert.equal(xdpOn(NS_B, 'rb0'), id, 'the first attachment is untouched');
    } finally {
      first.detach();
    }
    assert.ok(nothingAttached());
    assert.deepEqual(attachedResources().filter((r) => /roce|xdp/.test(r)), []);
  });

  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    test(`a process that attached and got ${signal} leaves nothing attached`, async () => {
      const mod = path.join(buildDir, 'harness', 'bpf', 'roce-attach.js');
      const code = `import { attachRoce } from ${JSON.stringify(mod)}; attachRoce(${JSON.stringify(TARGETS)}, { loss: [] }); console.log('attached'); setInterval(() => {}, 1000);`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve) => readline.createInterface({ input: child.stdout! }).once('line', resolve));
      assert.equal(line, 'attached');
      assert.ok(!nothingAttached());
      child.kill(signal);
      await new Promise((r) => child.once('exit', r));
      assert.ok(await waitFor(nothingAttached, 5000), `still attached after ${signal}`);
    });
  }
});
