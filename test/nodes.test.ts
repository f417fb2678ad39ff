// Node kinds for real: an agent in a network namespace, an agent started over ssh (an sshd in a
// namespace of ours), region reads between namespaces, and nothing left behind: not after a stop,
// not after the owner is SIGKILLed or Ctrl-C'd, and a dead run's leftovers are swept and reported.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadCatalog } from '../harness/functions/catalog.js';
import { repoRoot } from '../harness/paths.js';
import { AgentClient } from '../harness/platform/agent-client.js';
import { acquireFabric, hostLinks, namespaces, netnsAvailable, releaseFabric, sweepStaleNetworks } from '../harness/platform/nodes/fabric.js';
import { launchNode, parseInventory } from '../harness/platform/nodes/inventory.js';
import { sshdAvailable, startSshd } from '../harness/platform/nodes/sshd.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import { scratchDir } from '../harness/platform/scratch.js';
import { correct, waitFor } from './helpers.js';

const netns = netnsAvailable();
const skipNetns = netns.ok ? false : netns.reason;
const sshd = sshdAvailable();
const skipSsh = skipNetns || (sshd.ok ? false : sshd.reason);
const ours = () => namespaces().filter((n) => n.startsWith(`fxh-${process.pid}-`));
const ourLinks = () => hostLinks().filter((l) => l.startsWith(`fxh${process.pid}f`));
const warm = { mode: 'warm' as const, timeoutMs: 5000 };

test('netns: an agent in a namespace of its own answers over TCP at the namespace address; stop removes namespace and veth', { skip: skipNetns }, async () => {
  const catalog = await loadCatalog();
  const fn = catalog.get('sha256');
  const node = await launchNode({ name: 'ns-a', kind: 'netns' }, { variants: ['wasm'], memoryLimitMiB: 64 });
  try {
    assert.match(node.endpoint, /^tcp:10\.213\.\d+\.\d+:\d+$/);
    assert.ok(ours().some((n) => n.endsWith('-ns-a')), `its namespace exists: ${ours().join(', ')}`);
    // the agent really runs in that namespace
    const nsOfAgent = fs.readlinkSync(`/proc/${node.child.pid}/ns/net`);
    assert.notEqual(nsOfAgent, fs.readlinkSync('/proc/self/ns/net'));
    const c = await AgentClient.connect(node.endpoint);
    assert.equal((await c.hello()).node, 'ns-a');
    const name = await c.putModule('wasm-reactor', fs.readFileSync(fn.wasm!.path));
    const input = fn.workload.input(3, 'small');
    const r = await c.invoke({ variant: 'wasm', fn: name, input, ...warm });
    assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
    correct(fn, input, r.output);
    c.close();
  } finally {
    await node.stop();
  }
  assert.deepEqual(ours(), []);
  assert.deepEqual(ourLinks(), []);
  assert.ok(!pidAlive(node.child.pid!));
});

test('region reads between namespaces: an agent in one namespace reads a region of an agent in another', { skip: skipNetns }, async () => {
  const a = await launchNode({ name: 'owner', kind: 'netns' }, { variants: ['wasm'], memoryLimitMiB: 64 });
  const b = await launchNode({ name: 'reader', kind: 'netns' }, { variants: ['wasm'], memoryLimitMiB: 64 });
  const fabricNs = ours().find((n) => n.endsWith('-reader'))!;
  try {
    const c = await AgentClient.connect(a.endpoint);
    const bytes = Buffer.alloc(1 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
    const name = await c.putModule('native', bytes);
    c.close();
    // a reader process inside the reader's namespace (the host is not on the path between them)
    const script = `import { AgentClient } from ${JSON.stringify(path.join(repoRoot, 'build/harness/platform/agent-client.js'))};
      const c = await AgentClient.connect(process.argv[1]);
      const got = Buffer.from(await c.readRegion(process.argv[2], 1000, 500000));
      let bad = 0; for (let i = 0; i < got.length; i++) if (got[i] !== ((i + 1000) * 7 & 0xff)) bad++;
      try { await c.readRegion(process.argv[2], 1 << 20, 1); } catch (e) { console.log('refused:' + e.message); }
      console.log('read ' + got.length + ' bad ' + bad); c.close();`;
    const r = spawnSync('ip', ['netns', 'exec', fabricNs, process.execPath, '--input-type=module', '-e', script, a.endpoint, name], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /read 500000 bad 0/);
    assert.match(r.stdout, /refused:.*outside region/);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  assert.deepEqual(ours(), []);
});

test('ssh: an agent started over ssh on a host (an sshd in a namespace of ours) answers; stopping it ends the remote agent', { skip: skipSsh }, async () => {
  const catalog = await loadCatalog();
  const fn = catalog.get('fnv1a');
  const fabric = acquireFabric();
  const host = fabric.addNode('sshhost');
  const server = await startSshd(host.ns, host.address);
  let agentPid = 0;
  try {
    const node = await launchNode(
      { name: 'far', kind: 'ssh', host: host.address, port: server.port, user: 'root', identity: server.identity, knownHosts: server.knownHosts, projectDir: repoRoot, nodePath: process.execPath },
      { variants: ['wasm', 'native'], memoryLimitMiB: 64 },
    );
    try {
      assert.equal(node.endpoint, `tcp:${host.address}:${/:(\d+)$/.exec(node.ready.endpoint)![1]}`);
      const c = await AgentClient.connect(node.endpoint);
      const info = await c.hello();
      agentPid = info.pid;
      assert.notEqual(agentPid, node.child.pid, 'the agent is the remote process, not our ssh client');
      const name = await c.putModule('native', fs.readFileSync(fn.native!));
      const input = fn.workload.input(5, 'small');
      const r = await c.invoke({ variant: 'native', fn: name, input, mode: 'cold', timeoutMs: 5000 });
      assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
      correct(fn, input, r.output);
      c.close();
    } finally {
      await node.stop();
    }
    assert.ok(await waitFor(() => !pidAlive(agentPid), 5000), `the remote agent ${agentPid} stopped with its session`);
  } finally {
    await server.stop();
    host.remove();
    releaseFabric(fabric);
  }
  assert.ok(!pidAlive(server.pid));
  assert.deepEqual(ours(), []);
});

test('ssh: a host that refuses us is a clear error, and nothing is left', { skip: skipSsh }, async () => {
  const fabric = acquireFabric();
  const host = fabric.addNode('sshdeny');
  const server = await startSshd(host.ns, host.address);
  try {
    const wrongKey = path.join(scratchDir('key'), 'k');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
    await assert.rejects(
      launchNode({ name: 'denied', kind: 'ssh', host: host.address, port: server.port, user: 'root', identity: wrongKey, knownHosts: server.knownHosts, projectDir: repoRoot }, { variants: ['wasm'], memoryLimitMiB: 64 }),
      /agent denied \(ssh root@10\.213\.\d+\.\d+\) exited \(code 255\) before it was ready: .*Permission denied/,
    );
    fs.rmSync(path.dirname(wrongKey), { recursive: true, force: true });
  } finally {
    await server.stop();
    host.remove();
    releaseFabric(fabric);
  }
});

for (const sig of ['SIGKILL', 'SIGINT'] as const) {
  test(`the owner dies by ${sig}: its agents, namespaces and veth go with it`, { skip: skipNetns }, async () => {
    const script = `import { launchNode } from ${JSON.stringify(path.join(repoRoot, 'build/harness/platform/nodes/inventory.js'))};
      const n = await launchNode({ name: 'orphan', kind: 'netns' }, { variants: ['wasm'], memoryLimitMiB: 64 });
      console.log(JSON.stringify({ agent: n.child.pid }));
      setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      owner.stdout!.once('data', (d: Buffer) => resolve(d.toString()));
      owner.once('exit', (c) => reject(new Error(`owner exited (${c})`)));
    });
    const { agent } = JSON.parse(line) as { agent: number };
    const prefix = `fxh-${owner.pid}-`;
    assert.ok(namespaces().some((n) => n.startsWith(prefix)));
    assert.ok(hostLinks().some((l) => l.startsWith(`fxh${owner.pid}f`)));
    owner.kill(sig);
    assert.ok(await waitFor(() => !namespaces().some((n) => n.startsWith(prefix)), 10_000), `namespaces left: ${namespaces().join(', ')}`);
    assert.ok(await waitFor(() => !hostLinks().some((l) => l.startsWith(`fxh${owner.pid}f`)), 5000));
    assert.ok(await waitFor(() => !pidAlive(agent), 5000), `agent ${agent} still runs`);
  });
}

test('the next run removes what a dead run left (namespace, its processes, veth), and says so', { skip: skipNetns }, async () => {
  let dead = 4_000_000;
  while (pidAlive(dead)) dead++;
  const ns = `fxh-${dead}-f0-stale`;
  const veth = `fxh${dead}f0`;
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'x', 'netns', ns]);
  const sleeper = spawn('ip', ['netns', 'exec', ns, 'sleep', '600'], { stdio: 'ignore' });
  try {
    assert.ok(await waitFor(() => spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.trim() !== ''));
    const lines = sweepStaleNetworks();
    assert.ok(lines.includes(`removed stale network namespace ${ns} and its processes (pid ${dead} is gone)`), lines.join('\n'));
    assert.ok(!namespaces().includes(ns));
    assert.ok(await waitFor(() => sleeper.exitCode !== null || sleeper.signalCode !== null));
    // its veth died with the namespace's end of it; the sweep may have reported it too
    assert.ok(!hostLinks().includes(veth));
    assert.ok(lines.every((l) => !l.startsWith('could not')), lines.join('\n'));
  } finally {
    sleeper.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['link', 'del', veth]);
  }
});

test('the inventory: a list or {nodes}, from a file or inline; bad entries are clear errors', () => {
  const nodes = parseInventory('[{"name":"a","kind":"local"},{"name":"b","kind":"netns"},{"name":"c","kind":"ssh","host":"h","projectDir":"/srv/fxh"}]');
  assert.deepEqual(nodes.map((n) => n.kind), ['local', 'netns', 'ssh']);
  const dir = scratchDir('inv');
  try {
    fs.writeFileSync(path.join(dir, 'nodes.json'), '{"nodes":[{"name":"x","kind":"local"}]}');
    assert.equal(parseInventory(path.join(dir, 'nodes.json'))[0]!.name, 'x');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => parseInventory('[{"name":"a","kind":"vm"}]'), /"kind" is one of local, netns, ssh/);
  assert.throws(() => parseInventory('[{"name":"a","kind":"ssh","host":"h"}]'), /needs "projectDir"/);
  assert.throws(() => parseInventory('[{"name":"a","kind":"local"},{"name":"a","kind":"local"}]'), /two nodes .* named "a"/);
  assert.throws(() => parseInventory('/nonexistent/nodes.json'), /cannot read the node inventory/);
  assert.throws(() => parseInventory('[]'), /non-empty list/);
});

test('--nodes: an experiment records the inventory in env.json; a bad one is a usage error', async () => {
  const dir = scratchDir('inv');
  try {
    const zx = path.join(repoRoot, 'node_modules', '.bin', 'zx');
    const inventory = '[{"name":"n1","kind":"local"},{"name":"far","kind":"ssh","host":"192.0.2.7","projectDir":"/srv/fxh"}]';
    const ok = spawnSync(zx, ['experiments/warm.mjs', '--variants', 'wasm', '--functions', 'noop', '--reps', '2', '--warmup', '0', '--no-notebooks', '--out', path.join(dir, 'r'), '--nodes', inventory], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    assert.equal(ok.status, 0, ok.stderr);
    const env = JSON.parse(fs.readFileSync(path.join(dir, 'r', 'env.json'), 'utf8')) as { extra: { nodes: unknown } };
    assert.deepEqual(env.extra.nodes, JSON.parse(inventory));
    const bad = spawnSync(zx, ['experiments/warm.mjs', '--out', path.join(dir, 'x'), '--nodes', '[{"name":"a","kind":"ssh","host":"h"}]'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--nodes: node a \(ssh\): an ssh node needs "projectDir"/);
    assert.ok(!fs.existsSync(path.join(dir, 'x')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
