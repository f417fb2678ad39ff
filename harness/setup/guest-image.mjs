// Builds the throwaway QEMU guest's boot image into build/guest/: Debian's stock kernel (unpacked from
// its package, never installed on the host) and a busybox initramfs holding the kernel modules the
// guest needs (SoftRoCE, 9p, overlay, veth, tc). Plain Node with no dependencies: the bootstrap runs it.
// Idempotent: a stamp of the kernel version and the init script's hash skips the work when done.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = path.join(root, 'build', 'guest');
const initScript = path.join(root, 'harness', 'rdma', 'guest-init.sh');

/** what the guest loads, in dependency order after modprobe resolves them */
export const GUEST_MODULES = [
  'virtio_pci', '9pnet_virtio', '9p', 'overlay', 'veth', 'virtio_net',
  'crc32_generic', // rxe computes its ICRC with crc32; without it `rdma link add` fails with ENOENT
  'rdma_rxe', 'ib_uverbs', 'rdma_ucm',
  'sch_ingress', 'cls_bpf', 'act_bpf', 'sch_netem',
];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().slice(-400)}`);
  return r.stdout;
}

/** the kernel package Debian's linux-image-amd64 currently points at, e.g. linux-image-6.1.0-57-amd64 */
function kernelPackage() {
  const deps = run('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)/.exec(deps);
  if (!m) throw new Error(`apt-cache depends linux-image-amd64 names no kernel package (run apt-get update?): ${deps.trim().slice(0, 200)}`);
  return m[1];
}

export function buildGuestImage() {
  for (const tool of ['qemu-system-x86_64', 'busybox', 'cpio', 'depmod', 'modprobe']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool} || ls /sbin/${tool} /usr/sbin/${tool}`], { encoding: 'utf8' });
    if (r.status !== 0) return `skipped: ${tool} is missing (Debian packages qemu-system-x86, busybox-static, cpio, kmod)`;
  }
  const pkg = kernelPackage();
  const ver = pkg.replace(/^linux-image-/, '');
  const initHash = createHash('sha256').update(fs.readFileSync(initScript)).update(GUEST_MODULES.join(',')).digest('hex');
  const stampFile = path.join(out, 'stamp.json');
  const want = { kernel: ver, init: initHash };
  try {
    const have = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    if (have.kernel === want.kernel && have.init === want.init && fs.existsSync(path.join(out, 'initramfs.cpio.gz'))) return `up to date (${ver})`;
  } catch {}
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-guest-image-'));
  try {
    // apt-get download drops privileges to _apt, which cannot write into a root-owned mkdtemp folder
    fs.chmodSync(tmp, 0o777);
    run('apt-get', ['download', '-q', pkg], { cwd: tmp });
    const deb = fs.readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
    const x = path.join(tmp, 'x');
    run('dpkg', ['-x', path.join(tmp, deb), x]);
    run('depmod', ['-b', x, ver]);
    const order = [];
    for (const m of GUEST_MODULES) {
      for (const line of run('modprobe', ['-d', x, '-S', ver, '--show-depends', m]).split('\n')) {
        const f = /^insmod (\S+)/.exec(line)?.[1];
        if (f && !order.includes(f)) order.push(f);
      }
    }
    const ir = path.join(tmp, 'ir');
    for (const d of ['bin', 'modules', 'proc', 'sys', 'dev', 'lower', 'upper', 'host']) fs.mkdirSync(path.join(ir, d), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(ir, 'bin', 'busybox'));
    fs.chmodSync(path.join(ir, 'bin', 'busybox'), 0o755);
    for (const f of order) fs.copyFileSync(f, path.join(ir, 'modules', path.basename(f)));
    fs.writeFileSync(path.join(ir, 'modules', 'order'), order.map((f) => path.basename(f)).join('\n') + '\n');
    fs.copyFileSync(initScript, path.join(ir, 'init'));
    fs.chmodSync(path.join(ir, 'init'), 0o755);
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    const cpio = spawnSync('sh', ['-c', `cd "${ir}" && find . | cpio -o -H newc --quiet | gzip -1 > "${path.join(out, 'initramfs.cpio.gz')}"`], { encoding: 'utf8' });
    if (cpio.status !== 0) throw new Error(`initramfs: ${cpio.stderr.trim()}`);
    fs.copyFileSync(path.join(x, 'boot', `vmlinuz-${ver}`), path.join(out, 'vmlinuz'));
    fs.copyFileSync(path.join(x, 'boot', `config-${ver}`), path.join(out, 'config'));
    fs.writeFileSync(stampFile, JSON.stringify({ ...want, package: pkg, modules: order.map((f) => path.basename(f)) }, null, 1) + '\n');
    return `built (${pkg}, ${order.length} modules)`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(buildGuestImage());
