// Runs the test suite and checks that it left the machine as it found it:
// no runc containers, cgroups, bpf pins, scratch folders, /dev/shm files, network namespaces and veths
// (fxh…), DAMON kdamonds, sshd processes of ours (test sshds run from fxh-sshd-* folders) or platform processes (gateways,
// node agents, chain nodes: a stuck one outlives its parent) that were not there before.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function leftovers() {
  const found = [];
  const runc = spawnSync('runc', ['list', '-q'], { encoding: 'utf8' });
  if (runc.status === 0) found.push(...runc.stdout.split('\n').filter((l) => l.startsWith('fxh-')).map((l) => `runc container ${l}`));
  for (const base of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    let entries = [];
    try {
      entries = fs.readdirSync(base);
    } catch {}
    for (const ctl of entries) {
      let sub = [];
      try {
        sub = fs.readdirSync(path.join(base, ctl));
      } catch {}
      for (const s of sub) {
        if (!s.startsWith('fxh')) continue;
        found.push(`cgroup ${path.join(base, ctl, s)}`);
        // a shared parent (fxh-containerd, fxh-docker) may outlive a test run: look at its children too
        let inner = [];
        try {
          inner = fs.readdirSync(path.join(base, ctl, s), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
        } catch {}
        for (const i of inner) found.push(`cgroup ${path.join(base, ctl, s, i)}`);
      }
      if (ctl.startsWith('fxh')) found.push(`cgroup ${path.join(base, ctl)}`);
    }
  }
  try {
    for (const p of fs.readdirSync('/sys/fs/bpf')) if (p.startsWith('fxh')) found.push(`bpf pin /sys/fs/bpf/${p}`);
  } catch {}
  for (const d of fs.readdirSync(os.tmpdir())) if (d.startsWith('fxh-')) found.push(`scratch ${path.join(os.tmpdir(), d)}`);
  try {
    for (const f of fs.readdirSync('/dev/shm')) if (f.startsWith('fxh-')) found.push(`shared memory /dev/shm/${f}`);
  } catch {}
  // a working-set recording (harness/bpf/damon-access.ts) makes DAMON's only kdamond; none may outlive it
  try {
    const n = fs.readFileSync('/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds', 'utf8').trim();
    if (n !== '0') found.push(`DAMON kdamonds (${n})`);
  } catch {}
  found.push(...platformProcesses());
  found.push(...networks(), ...daemonLeftovers());
  return new Set(found);
}

/** network namespaces fxh-* and host links fxh* (the node launcher's fabric) */
function networks() {
  const out = [];
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ns.status === 0) for (const l of ns.stdout.split('\n')) if (l.startsWith('fxh-')) out.push(`network namespace ${l.split(' ')[0]}`);
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  if (links.status === 0) for (const m of links.stdout.matchAll(/^\d+: (fxh[^:@]*)[@:]/gm)) out.push(`link ${m[1]}`);
  return out;
}

/** containers of the docker and containerd variants, on a daemon the harness started or the machine's own (`docker ps -a`, `ctr -n fxh containers ls`), and daemons the harness started and left running */
function daemonLeftovers() {
  const out = [];
  for (const [kind, sock] of [['dockerd', '/tmp/fxh-dockerd/docker.sock'], ['dockerd', '/var/run/docker.sock']]) {
    if (!fs.existsSync(sock)) continue;
    const r = spawnSync('docker', ['-H', `unix://${sock}`, 'ps', '-a', '--format', '{{.Names}}'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) out.push(...r.stdout.split('\n').filter((n) => n.startsWith('fxh-')).map((n) => `${kind} container ${n}`));
  }
  for (const sock of ['/tmp/fxh-containerd/containerd.sock', '/run/containerd/containerd.sock']) {
    if (!fs.existsSync(sock)) continue;
    const r = spawnSync('ctr', ['-a', sock, '-n', 'fxh', 'containers', 'ls', '-q'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) out.push(...r.stdout.split('\n').filter((n) => n.trim()).map((n) => `containerd container ${n}`));
  }
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (/^(\S*\/)?(dockerd|containerd) /.test(cmd) && /\/fxh-(dockerd|containerd)\//.test(cmd)) out.push(`daemon ${pid}: ${cmd.slice(0, 120)}`);
  }
  return out;
}

/** processes running the platform's entry points from this checkout's build, our test sshds and QEMU guests */
function platformProcesses() {
  const out = [];
  const mark = path.join(root, 'build', 'harness') + path.sep;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (cmd.includes(mark) && /(agent-main|gateway-main|node-main|process-main)\.js/.test(cmd)) out.push(`process ${pid}: ${cmd.slice(0, 160)}`);
    if (/sshd/.test(cmd) && cmd.includes('/fxh-sshd-')) out.push(`process ${pid}: ${cmd.slice(0, 160)}`);
    if (/qemu-system/.test(cmd) && cmd.includes('-name fxh-guest')) out.push(`guest ${pid}: ${cmd.slice(0, 160)}`);
  }
  return out;
}

const testDir = path.join(root, 'build', 'test');
const files = fs.readdirSync(testDir).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(testDir, f));
const only = process.argv.slice(2);
const chosen = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
// node --test given no file would run its default pattern, i.e. everything
if (!chosen.length) {
  console.error(`no test file matches ${only.map((o) => `"${o}"`).join(', ')}; the files: ${files.map((f) => path.basename(f, '.test.js')).join(', ')}`);
  process.exit(2);
}

const before = leftovers();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...chosen], { stdio: 'inherit', cwd: root });
// processes get a moment to exit after the last test
let after = leftovers();
for (let i = 0; i < 20 && [...after].some((x) => !before.has(x) && x.startsWith('process ')); i++) {
  await new Promise((res) => setTimeout(res, 100));
  after = leftovers();
}
const added = [...after].filter((x) => !before.has(x));
if (added.length) {
  console.error(`\nthe tests left these behind:\n  ${added.join('\n  ')}`);
  process.exit(1);
}
console.error(`leak check: nothing left behind (${before.size} pre-existing item(s) ignored)`);
process.exit(r.status ?? 1);
