// The gateway as a service: with --lifeline none it serves with no standard input (nohup, systemd,
// </dev/null) until it is told to stop; with the default lifeline it stops when its parent's end of
// stdin closes, and either way it says why it stopped.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../harness/paths.js';

const GATEWAY = path.join(repoRoot, 'build', 'harness', 'platform', 'gateway-main.js');

function start(args: string[], stdin: 'ignore' | 'pipe') {
  const child = spawn(process.execPath, [GATEWAY, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const ready = new Promise<{ http: string }>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /^READY (.*)$/m.exec(out);
      if (m) resolve(JSON.parse(m[1]!));
    });
    void exited.then((c) => reject(new Error(`gateway exited (${c}) before READY: ${err}`)));
  });
  return { child, ready, exited, err: () => err };
}

test('--lifeline none: started with </dev/null, the gateway serves HTTP until SIGTERM, then says why it stopped', async () => {
  const g = start(['--http', '127.0.0.1:0', '--lifeline', 'none'], 'ignore');
  const { http } = await g.ready;
  await new Promise((r) => setTimeout(r, 500)); // stdin (/dev/null) is at EOF all along
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${http}/invoke/wasm/noop?mode=warm`, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok\n');
  }
  g.child.kill('SIGTERM');
  assert.equal(await g.exited, 0);
  assert.match(g.err(), /stopping: SIGTERM/);
});

test('default lifeline: the gateway stops when its stdin closes, and says so', async () => {
  const g = start(['--http', '127.0.0.1:0'], 'pipe');
  await g.ready;
  g.child.stdin!.end();
  assert.equal(await g.exited, 0);
  assert.match(g.err(), /stopping: its standard input closed/);
});

test('a wrong --lifeline is refused with the choices', async () => {
  const g = start(['--http', '127.0.0.1:0', '--lifeline', 'forever'], 'ignore');
  await assert.rejects(g.ready);
  assert.equal(await g.exited, 2);
  assert.match(g.err(), /--lifeline is stdin, none or connect:/);
  assert.ok(fs.existsSync(GATEWAY));
});
