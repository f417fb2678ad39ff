// The SoftRoCE guest: it boots, runs a command over this checkout, brings back its output, exit code
// and files, carries real RDMA traffic over its veth, and never outlives a timeout or an abort.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { GUEST_MARK, GuestError, guestUnavailable, runInGuest } from '../harness/rdma/guest.js';
import { processesNaming } from '../harness/platform/proc-sweep.js';
import { spawn } from 'node:child_process';
import { buildDir } from '../harness/paths.js';
import { waitFor } from './helpers.js';

const unavailable = guestUnavailable();
// other runs may boot guests meanwhile: look only at the ones of a run folder of ours
const guests = (out: string) => processesNaming(`-name\0${GUEST_MARK}\0`).filter((pid) => processesNaming(`fxh.out=${out}`).includes(pid));

describe('SoftRoCE guest', { skip: unavailable ?? false }, () => {
  const dirs: string[] = [];
  const outDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-guest-test-'));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('runs a command: exit code, output and files come back; two rxe devices carry a perftest write over the veth', { timeout: 240_000 }, async () => {
    const out = outDir();
    const marker = `fxh-guest-scratch-${process.pid}`;
    const script = [
      'rdma link',
      `echo "from the guest $FXH_GUEST" > ${out}/hello.txt`,
      `echo scratch > /tmp/${marker}`,
      `ib_write_lat -d $FXH_GUEST_DEV_B -x $FXH_GUEST_GID_INDEX -n 100 > ${out}/server.txt 2>&1 &`,
      'sleep 3',
      `ib_write_lat -d $FXH_GUEST_DEV_A -x $FXH_GUEST_GID_INDEX -n 100 $FXH_GUEST_ADDR_B > ${out}/client.txt 2>&1; echo "client exit $?"`,
      'wait',
      'ip -s link show fxa0',
      'exit 3',
    ].join('\n');
    const r = await runInGuest({ command: ['sh', '-c', script], outDir: out, timeoutMs: 220_000 });
    assert.equal(r.exitCode, 3, r.output);
    assert.match(r.output, /rxe_a\/1 state ACTIVE/);
    assert.match(r.output, /rxe_b\/1 state ACTIVE/);
    assert.match(r.output, /client exit 0/, fs.readFileSync(path.join(out, 'client.txt'), 'utf8'));
    assert.equal(fs.readFileSync(path.join(out, 'hello.txt'), 'utf8'), 'from the guest 1\n');
    assert.ok(!fs.existsSync(path.join('/tmp', marker)), "the guest's writes outside its run folder stay in the guest");
    // perftest's result row: 2 bytes, 100 iterations, then the latencies
    assert.match(fs.readFileSync(path.join(out, 'client.txt'), 'utf8'), /^\s*2\s+100\s+[\d.]+/m);
    // the packets crossed the veth: at least one per write each way
    const tx = /TX:.*\n\s*(\d+)\s+(\d+)/.exec(r.output);
    assert.ok(tx && Number(tx[2]) >= 100, `fxa0 sent ${tx?.[2]} packets`);
    assert.ok(fs.statSync(r.consoleLogPath).size > 0, 'the console log is kept');
    assert.match(fs.readFileSync(r.consoleLogPath, 'utf8'), /fxh-guest: done 3/);
    assert.ok(r.accel === 'kvm' || r.accel === 'tcg');
    assert.deepEqual(guests(out), [], 'no guest after');
  });

  test('a guest that cannot finish booting in time is killed and reported, with its console log kept', { timeout: 60_000 }, async () => {
    const out = outDir();
    await assert.rejects(runInGuest({ command: ['true'], outDir: out, timeoutMs: 1500 }), (e: unknown) => {
      assert.ok(e instanceof GuestError, String(e));
      assert.match(e.message, /did not boot: the guest did not finish within/);
      assert.ok(fs.existsSync(e.consoleLogPath));
      return true;
    });
    assert.deepEqual(guests(out), [], 'the guest was killed');
  });

  test('SIGKILL of the process that booted a guest takes the guest with it (pdeathsig)', { timeout: 60_000 }, async () => {
    const out = outDir();
    const cli = spawn(process.execPath, [path.join(buildDir, 'harness', 'rdma', 'guest-cli.js'), '--out', out, '--no-network', '--', 'sleep', '600'], { stdio: 'ignore' });
    assert.ok(await waitFor(() => guests(out).length === 1, 20_000), 'the guest started');
    cli.kill('SIGKILL');
    assert.ok(await waitFor(() => guests(out).length === 0, 10_000), `the guest outlived its parent: ${guests(out).join(', ')}`);
  });

  test('an abort (Ctrl-C) while the command runs stops the guest', { timeout: 120_000 }, async () => {
    const out = outDir();
    const ac = new AbortController();
    const started = path.join(out, 'started');
    const poll = setInterval(() => fs.existsSync(started) && ac.abort(), 200);
    try {
      await assert.rejects(runInGuest({ command: ['sh', '-c', `touch ${started}; sleep 600`], outDir: out, timeoutMs: 100_000, network: false, signal: ac.signal }), /guest run interrupted/);
    } finally {
      clearInterval(poll);
    }
    assert.deepEqual(guests(out), [], 'the guest was killed');
  });
});
