// The RoCEv2 telemetry and loss programs loaded into this kernel and run with BPF_PROG_RUN on
// packets built from the spec (harness/bpf/roce-packet.ts): every opcode class, PSN gaps and
// retransmissions, NAK syndromes, request-to-ACK stamps, cuts at every header boundary and lying
// headers, and the loss program's selections. Nothing of ours stays loaded afterwards.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { VerifierError, XDP, attachedResources } from '../harness/bpf/libbpf.js';
import { repoRoot } from '../harness/paths.js';
import { OP, boundaries, extHeaders, rocePacket, type RoceSpec } from '../harness/bpf/roce-packet.js';
import { ANY_QP, ROCE_CLASSES, type RoceClass, type QpCounters } from '../harness/bpf/roce-layout.js';
import { loadRoceTelemetry, roceCapability, type RoceTelemetry } from '../harness/bpf/roce.js';
import { loadRoceLoss, type RoceLoss } from '../harness/bpf/roce-loss.js';
import { waitFor } from './helpers.js';

const cap = roceCapability();
const skip = cap.ok ? false : `eBPF unavailable here: ${cap.reason}`;

/** ids of loaded programs named fxh_roce* (bpftool; [] without it) */
function roceProgs(): string[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return (JSON.parse(r.stdout) as { id: number; name?: string }[]).filter((p) => p.name?.startsWith('fxh_roce')).map((p) => `${p.name}#${p.id}`);
}

// Independent of bpf/roce.h: opcode -> class, and whether the packet begins an operation.
const CLASS_OF: [number, RoceClass, boolean][] = [
  [OP.SEND_FIRST, 'send', true], [OP.SEND_MIDDLE, 'send', false], [OP.SEND_LAST, 'send', false], [OP.SEND_LAST_IMM, 'send', false],
  [OP.SEND_ONLY, 'send', true], [OP.SEND_ONLY_IMM, 'send', true], [OP.SEND_LAST_INV, 'send', false], [OP.SEND_ONLY_INV, 'send', true],
  [OP.WRITE_FIRST, 'write', true], [OP.WRITE_MIDDLE, 'write', false], [OP.WRITE_LAST, 'write', false], [OP.WRITE_LAST_IMM, 'write', false],
  [OP.WRITE_ONLY, 'write', true], [OP.WRITE_ONLY_IMM, 'write', true], [OP.READ_REQUEST, 'read_req', true],
  [OP.READ_RESPONSE_FIRST, 'read_resp', true], [OP.READ_RESPONSE_MIDDLE, 'read_resp', false], [OP.READ_RESPONSE_LAST, 'read_resp', false],
  [OP.READ_RESPONSE_ONLY, 'read_resp', true], [OP.ACK, 'ack', true], [OP.ATOMIC_ACK, 'atomic_ack', true], [OP.COMPARE_SWAP, 'atomic', true],
  [OP.FETCH_ADD, 'atomic', true], [OP.UC_SEND_ONLY, 'send', true], [OP.UC_WRITE_ONLY, 'write', true], [OP.UD_SEND_ONLY, 'send', true],
  [OP.UD_SEND_ONLY_IMM, 'send', true], [OP.CNP, 'cnp', true],
];
const NO_PAYLOAD = new Set<number>([OP.READ_REQUEST, OP.ACK, OP.ATOMIC_ACK, OP.COMPARE_SWAP, OP.FETCH_ADD, OP.CNP]);

const A = '10.77.0.1', B = '10.77.0.2';
const zeros = () => Object.fromEntries(ROCE_CLASSES.map((c) => [c, 0])) as Record<RoceClass, number>;

describe('RoCEv2 telemetry and loss under BPF_PROG_RUN', { skip }, () => {
  let t: RoceTelemetry;
  let progsBefore: string[];
  const run = (s: RoceSpec | Buffer) => t.prog.testRun({ dataIn: Buffer.isBuffer(s) ? s : rocePacket(s) }).retval;
  const qp = (addr: string, qpn: number): QpCounters => {
    const q = t.qp(addr, qpn);
    assert.ok(q, `no counters for ${addr} QP ${qpn}`);
    return q;
  };

  before(() => {
    progsBefore = roceProgs();
    t = loadRoceTelemetry({ pathMtu: 1024 });
  });
  afterEach(() => t.reset());
  after(async () => {
    t.close();
    assert.deepEqual(attachedResources().filter((r) => r.includes('roce')), []);
    assert.ok(await waitFor(() => roceProgs().every((p) => progsBefore.includes(p))), `left loaded: ${roceProgs().join(', ')}`);
  });

  test('every opcode class: packets, operations and payload bytes of its QP, nothing elsewhere', () => {
    const want = { pkts: zeros(), ops: zeros(), bytes: zeros() };
    CLASS_OF.forEach(([op, cls, starts], i) => {
      const payload = NO_PAYLOAD.has(op) ? 0 : 100 + i;
      assert.equal(run({ opcode: op, dqpn: 0x123456, psn: i, payload, pad: payload % 4 === 0 ? 0 : 4 - (payload % 4) }), XDP.PASS, `opcode 0x${op.toString(16)}`);
      want.pkts[cls]++;
      if (starts) want.ops[cls]++;
      want.bytes[cls] += payload;
    });
    const c = t.counters();
    assert.equal(c.global.roce, CLASS_OF.length);
    assert.equal(c.malformed, 0);
    assert.equal(c.qps.length, 1);
    const q = c.qps[0]!;
    assert.equal(q.address, B);
    assert.equal(q.qpn, 0x123456);
    assert.deepEqual(q.pkts, want.pkts);
    assert.deepEqual(q.ops, want.ops);
    assert.deepEqual(q.bytes, want.bytes);
  });

  test('QPs are told apart by destination address and QPN, IPv4 and IPv6, with a VLAN tag or without', () => {
    run({ opcode: OP.SEND_ONLY, dqpn: 17, psn: 1, payload: 10 });
    run({ opcode: OP.SEND_ONLY, dqpn: 17, psn: 1, payload: 20, dst: '10.77.0.3' });
    run({ opcode: OP.SEND_ONLY, dqpn: 18, psn: 1, payload: 30, vlan: 5 });
    run({ opcode: OP.SEND_ONLY, dqpn: 17, psn: 1, payload: 40, src: 'fd00::1', dst: 'fd00::2' });
    const got = t.counters().qps.map((q) => [q.address, q.qpn, q.bytes.send]);
    assert.deepEqual(got, [['10.77.0.2', 17, 10], ['10.77.0.2', 18, 30], ['10.77.0.3', 17, 20], ['fd00:0:0:0:0:0:0:2', 17, 40]]);
  });

  test('PSN gaps count the missing PSNs, retransmissions count as behind, across the 2^24 wrap', () => {
    // go-back-N: 12 and 13 lost, the requester resends from 12 on
    for (const psn of [10, 11, 14, 15, 12, 13, 14, 15, 16]) run({ opcode: OP.WRITE_ONLY, dqpn: 20, psn, payload: 8 });
    let q = qp(B, 20);
    assert.equal(q.psnMissing, 2); // 12, 13 skipped
    assert.equal(q.gapEvents, 1);
    assert.equal(q.psnBehind, 1); // the stream went back once (to 12); 13.. then follow in order
    assert.equal(q.pkts.write, 9);
    // 12 and 13 arrive for the first time late (they fill the hole); 14 and 15 come again
    assert.equal(q.ops.write, 7);
    assert.equal(q.bytes.write, 7 * 8);
    assert.equal(q.retransmitted, 2);
    run({ opcode: OP.WRITE_ONLY, dqpn: 20, psn: 16, payload: 8 }); // a plain duplicate
    assert.equal(qp(B, 20).retransmitted, 3);
    assert.equal(qp(B, 20).ops.write, 7);
    for (const psn of [0xfffffe, 0xffffff, 0, 1, 3]) run({ opcode: OP.SEND_ONLY, dqpn: 21, psn, payload: 1 });
    q = qp(B, 21);
    assert.equal(q.psnMissing, 1); // only 2
    assert.equal(q.psnBehind, 0);
    // a multi-packet message moves one PSN per packet; a read request as many as its responses
    for (const [op, psn, dma] of [[OP.SEND_FIRST, 100, 0], [OP.SEND_MIDDLE, 101, 0], [OP.SEND_LAST, 102, 0], [OP.READ_REQUEST, 103, 3000], [OP.WRITE_ONLY, 106, 0]] as const) {
      run({ opcode: op, dqpn: 22, psn, payload: op === OP.READ_REQUEST ? 0 : 4, dmaLen: dma });
    }
    q = qp(B, 22);
    assert.equal(q.psnMissing, 0, 'a 3000-byte read at path MTU 1024 takes PSNs 103..105');
    assert.equal(q.ops.send, 1);
    assert.equal(q.pkts.send, 3);
    // responses do not take part in the request stream
    run({ opcode: OP.ACK, dqpn: 22, psn: 500 });
    run({ opcode: OP.WRITE_ONLY, dqpn: 22, psn: 107, payload: 1 });
    assert.equal(qp(B, 22).psnMissing, 0);
  });

  test('AETH syndromes: ACKs, each NAK code, RNR NAKs, on the QP the response reaches', () => {
    const resp = (syndrome: number, op: number = OP.ACK) => run({ opcode: op, dqpn: 30, psn: 1, syndrome, src: B, dst: A });
    resp(0x00);
    resp(0x1f); // ACK with credit count 31
    resp(0x00, OP.READ_RESPONSE_ONLY);
    for (let code = 0; code < 5; code++) for (let k = 0; k <= code; k++) resp(0x60 | code);
    resp(0x20 | 14);
    resp(0x20 | 3);
    resp(0x40); // reserved syndrome class: neither ACK nor NAK
    const q = qp(A, 30);
    assert.equal(q.acks, 3);
    assert.deepEqual(q.naks, { psn_seq_error: 1, invalid_request: 2, remote_access_error: 3, remote_op_error: 4, invalid_rd_request: 5 });
    assert.equal(q.rnrNaks, 2);
    assert.equal(q.pkts.ack, 1 + 1 + 15 + 2 + 1);
    assert.equal(t.qp(B, 30), null, 'nothing attributed to the sender');
  });

  test('request-to-ACK time: a request asking for an ACK is closed by the ACK with its PSN, attributed to the requester', () => {
    run({ opcode: OP.WRITE_ONLY, dqpn: 40, psn: 7, payload: 64, ackReq: true }); // A -> B's QP 40
    run({ opcode: OP.ACK, dqpn: 41, psn: 6, src: B, dst: A }); // another PSN: no match
    let q = qp(A, 41);
    assert.equal(q.rtt.count, 0);
    run({ opcode: OP.ACK, dqpn: 41, psn: 7, src: B, dst: A });
    q = qp(A, 41);
    assert.equal(q.rtt.count, 1);
    assert.ok(q.rtt.sumNs > 0 && q.rtt.minNs === q.rtt.sumNs && q.rtt.maxNs === q.rtt.sumNs);
    assert.equal(q.rtt.hist.reduce((a, b) => a + b, 0), 1);
    run({ opcode: OP.ACK, dqpn: 41, psn: 7, src: B, dst: A }); // a duplicate ACK: the stamp is gone
    assert.equal(qp(A, 41).rtt.count, 1);
    assert.equal(qp(A, 41).acks, 3);
    // a NAK does not close it; a read's stamp sits on the PSN of its last response packet
    run({ opcode: OP.READ_REQUEST, dqpn: 40, psn: 8, dmaLen: 2048, ackReq: true });
    run({ opcode: OP.READ_RESPONSE_FIRST, dqpn: 41, psn: 8, payload: 1024, src: B, dst: A, syndrome: 0x60 });
    run({ opcode: OP.READ_RESPONSE_LAST, dqpn: 41, psn: 9, payload: 1024, src: B, dst: A });
    q = qp(A, 41);
    assert.equal(q.rtt.count, 2);
    assert.equal(q.bytes.read_resp, 2048);
    assert.equal(q.ops.read_resp, 1);
    // without ack-request no stamp
    run({ opcode: OP.WRITE_ONLY, dqpn: 40, psn: 11, payload: 1 });
    run({ opcode: OP.ACK, dqpn: 41, psn: 11, src: B, dst: A });
    assert.equal(qp(A, 41).rtt.count, 2);
  });

  test('a packet cut at any byte is counted by the header it was cut in, never attributed to a QP', () => {
    const specs: RoceSpec[] = [
      { opcode: OP.WRITE_FIRST, dqpn: 50, psn: 1, payload: 16 }, // RETH
      { opcode: OP.ACK, dqpn: 50, psn: 1 }, // AETH
      { opcode: OP.COMPARE_SWAP, dqpn: 50, psn: 1 }, // AtomicETH (28)
      { opcode: OP.UD_SEND_ONLY_IMM, dqpn: 50, psn: 1, payload: 4 }, // DETH + ImmDt
      { opcode: OP.SEND_ONLY, dqpn: 50, psn: 1, payload: 8, src: 'fd00::1', dst: 'fd00::2' },
    ];
    for (const s of specs) {
      const full = rocePacket(s);
      const b = boundaries(s);
      assert.equal(b.end, full.length);
      assert.ok(extHeaders(s.opcode).length > 0 || s.src === 'fd00::1');
      for (let len = 14; len < full.length; len++) {
        t.reset();
        // the IP and UDP lengths still claim the whole packet: the cut shows
        assert.equal(run(full.subarray(0, len)), XDP.PASS);
        const c = t.counters();
        const want = len < b.ip ? 'trunc_ip' : len < b.udp ? 'trunc_udp' : len < b.bth ? 'trunc_bth' : len < b.ext ? 'trunc_ext' : 'bad_length';
        assert.equal(c.global[want], 1, `opcode 0x${s.opcode.toString(16)} cut at ${len}: ${JSON.stringify(c.global)}`);
        assert.equal(c.malformed, 1);
        assert.equal(c.global.roce, 0);
        assert.deepEqual(c.qps, []);
      }
    }
    t.reset();
    const tagged = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 50, psn: 1, vlan: 7 });
    for (let len = 14; len < 18; len++) run(tagged.subarray(0, len));
    assert.equal(t.counters().global.trunc_eth, 4);
  });

  test('lying or unsupported headers are malformed; other traffic is not RoCE', () => {
    const cases: [string, Buffer][] = [
      ['bad_length', rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8, udpLenDelta: 1 })],
      ['bad_length', rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8, udpLenDelta: -13 })], // no room for its ICRC
      ['ip_fragment', rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8, fragment: true })],
    ];
    for (const [op] of [[0x15], [0x40], [0xa4], [0x2c], [0x66]] as const) {
      const p = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8 });
      p[14 + 20 + 8] = op;
      cases.push(['bad_opcode', p]);
    }
    const padded = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1 });
    padded[14 + 20 + 8 + 1] = 3 << 4; // a pad count of 3 with no pad bytes: the ICRC would be eaten
    cases.push(['bad_length', padded]);
    const ihl4 = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8 });
    ihl4[14] = 0x44;
    cases.push(['trunc_ip', ihl4]);
    const port = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8 });
    port.writeUInt16BE(4790, 14 + 20 + 2);
    cases.push(['not_roce', port]);
    const tcp = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1, payload: 8 });
    tcp[14 + 9] = 6;
    cases.push(['not_roce', tcp]);
    const arp = rocePacket({ opcode: OP.SEND_ONLY, dqpn: 60, psn: 1 });
    arp.writeUInt16BE(0x0806, 12);
    cases.push(['not_roce', arp]);
    for (const [why, p] of cases) {
      t.reset();
      assert.equal(run(p), XDP.PASS);
      const c = t.counters();
      assert.equal(c.global[why as keyof typeof c.global], 1, `${why}: ${JSON.stringify(c.global)}`);
      assert.equal(c.global.seen, 1);
      assert.deepEqual(c.qps, [], why);
    }
  });

  describe('loss injection', () => {
    let loss: RoceLoss;
    const send = (s: RoceSpec) => loss.prog.testRun({ dataIn: rocePacket(s) }).retval;
    before(() => {
      loss = loadRoceLoss({ next: t.prog.fd });
    });
    afterEach(() => {
      for (let i = 0; i < 8; i++) loss.clearRule(i);
    });
    after(() => loss.close());

    test('every Nth packet of one QP is dropped; the telemetry behind it sees the gaps; other QPs untouched', () => {
      loss.setRule(0, { kind: 'nth', qpn: 70, everyN: 3 });
      const verdicts: number[] = [];
      for (let psn = 0; psn < 12; psn++) {
        verdicts.push(send({ opcode: OP.WRITE_ONLY, dqpn: 70, psn, payload: 32 }));
        send({ opcode: OP.WRITE_ONLY, dqpn: 71, psn, payload: 32 });
      }
      assert.deepEqual(verdicts, [2, 2, 1, 2, 2, 1, 2, 2, 1, 2, 2, 1]);
      assert.deepEqual(loss.ruleStats(0), { selected: 12, dropped: 4 });
      assert.deepEqual(loss.drops().map((d) => [d.qpn, d.psn, d.opcode, d.rule]), [2, 5, 8, 11].map((p) => [70, p, OP.WRITE_ONLY, 0]));
      const q = qp(B, 70);
      assert.equal(q.pkts.write, 8);
      assert.equal(q.bytes.write, 8 * 32);
      assert.equal(q.psnMissing, 3, 'drops at 2, 5, 8 are followed by a later PSN; 11 is the last one sent');
      assert.equal(qp(B, 71).pkts.write, 12);
      assert.equal(qp(B, 71).psnMissing, 0);
    });

    test('a PSN range is dropped at most max times, so a retransmission gets through', () => {
      loss.setRule(1, { kind: 'psn-range', qpn: 72, psnLo: 0xfffffe, psnHi: 1, maxDrops: 4 }); // wraps
      const first = [0xfffffd, 0xfffffe, 0xffffff, 0, 1, 2].map((psn) => send({ opcode: OP.SEND_ONLY, dqpn: 72, psn, payload: 4 }));
      assert.deepEqual(first, [2, 1, 1, 1, 1, 2]);
      assert.equal(qp(B, 72).psnMissing, 4);
      // the requester goes back to 0xfffffe: now it passes
      assert.equal(send({ opcode: OP.SEND_ONLY, dqpn: 72, psn: 0xfffffe, payload: 4 }), XDP.PASS);
      assert.deepEqual(loss.ruleStats(1), { selected: 7, dropped: 4 });
      assert.equal(qp(B, 72).psnBehind, 1);
      assert.equal(qp(B, 72).ops.send, 3, 'the late first arrival counts');
      assert.equal(qp(B, 72).retransmitted, 0);
    });

    test('requestsOnly spares ACKs, an address limits the rule, any QP selects all, and a rule can be cleared', () => {
      loss.setRule(0, { kind: 'nth', qpn: ANY_QP, everyN: 1, requestsOnly: true, address: B });
      assert.equal(send({ opcode: OP.ACK, dqpn: 80, psn: 1, src: B, dst: A }), XDP.PASS);
      assert.equal(send({ opcode: OP.WRITE_ONLY, dqpn: 80, psn: 1, dst: '10.77.0.3', payload: 1 }), XDP.PASS);
      assert.equal(send({ opcode: OP.WRITE_ONLY, dqpn: 81, psn: 1, payload: 1 }), XDP.DROP);
      assert.equal(send({ opcode: OP.SEND_ONLY, dqpn: 82, psn: 1, payload: 1 }), XDP.DROP);
      loss.clearRule(0);
      assert.equal(send({ opcode: OP.SEND_ONLY, dqpn: 82, psn: 2, payload: 1 }), XDP.PASS);
      // malformed packets are never selected
      loss.setRule(0, { kind: 'nth', qpn: ANY_QP, everyN: 1 });
      assert.equal(loss.prog.testRun({ dataIn: rocePacket({ opcode: OP.SEND_ONLY, dqpn: 82, psn: 3, payload: 8 }).subarray(0, 50) }).retval, XDP.PASS);
      assert.equal(t.counters().global.trunc_bth, 1);
    });

    test('without a next program the packets pass, and that is counted', () => {
      const alone = loadRoceLoss();
      try {
        assert.equal(alone.prog.testRun({ dataIn: rocePacket({ opcode: OP.SEND_ONLY, dqpn: 90, psn: 1 }) }).retval, XDP.PASS);
        assert.deepEqual(alone.global(), { seen: 1, roce: 1, dropped: 0, next_missing: 1 });
      } finally {
        alone.close();
      }
    });

    test('bad rules are refused with the reason', () => {
      assert.throws(() => loss.setRule(0, { kind: 'nth', qpn: 1, everyN: 0 }), /everyN must be an integer >= 1/);
      assert.throws(() => loss.setRule(0, { kind: 'psn-range', qpn: 1, psnLo: 0, psnHi: 1 << 24 }), /psnHi must be a PSN/);
      assert.throws(() => loss.setRule(0, { kind: 'nth', qpn: -1, everyN: 2 }), /qpn must be/);
      assert.throws(() => loss.setRule(8, { kind: 'nth', qpn: 1, everyN: 2 }), /slot 8: want 0\.\.7/);
      assert.throws(() => loss.setRule(0, { kind: 'nth', qpn: 1, everyN: 2, address: '10.1.2' }), /bad address/);
      assert.throws(() => loss.setRule(0, { kind: 'drop-all', qpn: 1 } as never), /kind must be/);
    });
  });

  test('a telemetry build without its BTH bounds check is refused by the verifier, with the log', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fxh-${process.pid}-roce-`));
    try {
      const obj = path.join(dir, 'roce-unchecked.bpf.o');
      const inc = ['/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu'].filter((d) => fs.existsSync(d)).map((d) => `-I${d}`);
      const cc = spawnSync('clang', ['-O2', '-g', '-target', 'bpf', '-DFXH_ROCE_UNCHECKED', ...inc, '-I', path.join(repoRoot, 'bpf'), '-c', path.join(repoRoot, 'bpf', 'roce.bpf.c'), '-o', obj], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      assert.throws(
        () => loadRoceTelemetry({ object: obj }),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, String(e));
          assert.equal(e.program, 'fxh_roce');
          assert.match(e.message, /verifier log:/);
          assert.match(e.log, /invalid access to packet/);
          return true;
        },
      );
      assert.deepEqual(attachedResources().filter((r) => r.includes('roce-unchecked')), [], 'the refused object is closed');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing object file and a bad path MTU are clear errors', () => {
    assert.throws(() => loadRoceTelemetry({ object: '/nonexistent/roce.bpf.o' }), /no such object file \(build it: node bpf\/build\.mjs\)/);
    assert.throws(() => loadRoceTelemetry({ pathMtu: -1 }), /pathMtu -1/);
  });
});
