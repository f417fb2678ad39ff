// Installs what is missing, then builds. Plain Node with no dependencies: it runs before `npm ci`.
// Idempotent: once everything is there it only checks, which takes seconds.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const t0 = Date.now();

/** Debian packages, each with the reason the project needs it. */
const APT = {
  clang: 'compiles functions to wasm32-wasi and native, and eBPF programs',
  lld: 'links wasm32 modules (wasm-ld)',
  llvm: 'llvm-strip and friends for eBPF objects',
  'wasi-libc': 'C library for wasm32-wasi functions',
  'libclang-rt-14-dev-wasm32': 'compiler runtime for wasm32',
  'libc6-dev': 'static glibc for native function binaries',
  runc: 'the container variant runs OCI bundles with runc',
  'busybox-static': 'the probe container of the runc capability check',
  'docker.io': 'the docker variant: dockerd (started for the run when none runs), the container baseline SeBS, Faasm and OpenWhisk use',
  containerd: 'the containerd variant: containerd and ctr, the container baseline faasd and Knative use',
  hyperfine: 'times `docker run --rm` as an independent check of the docker cold start',
  criu: 'the CRIU checkpoint/restore baseline of fork.mjs (recorded unavailable with `criu check`\'s own reason where the kernel refuses)',
  gcc: 'builds the kernel-hop ping-pong of the sockmap experiment',
  wabt: 'wasm-validate, wasm-objdump: fixture post-processing',
  binaryen: 'wasm-opt: fixture post-processing',
  'libbpf-dev': 'eBPF programs and their loaders',
  bpftool: 'eBPF diagnostics',
  'python3-notebook': 'Jupyter, to execute the notebooks',
  'jupyter-nbconvert': 'executes notebooks headlessly into the results folder',
  'python3-ipykernel': 'Jupyter kernel machinery used by nbconvert',
  'fonts-dejavu-core': 'fonts for the PNG figures',
  'util-linux': 'taskset, to pin the gateway in throughput runs',
  iproute2: 'ip netns and veths: the netns node kind and the namespace fabric its nodes share',
  'openssh-client': 'ssh: the ssh node kind starts node agents on other hosts',
  'openssh-server': 'sshd: the ssh node kind is tested against an sshd started inside a network namespace of the test (never as a system service)',
  'qemu-system-x86': 'boots the throwaway guest whose stock Debian kernel provides SoftRoCE (rdma_rxe), which the host kernel cannot',
  cpio: "packs the guest's initramfs",
  kmod: "depmod/modprobe resolve the guest kernel's module dependencies (nothing is loaded on the host)",
  'rdma-core': 'RDMA userspace (rdma link add for SoftRoCE devices), run inside the guest from the host root',
  'ibverbs-providers': "libibverbs' drivers, among them rxe (SoftRoCE)",
  'ibverbs-utils': 'ibv_devinfo: the RDMA device check',
  'libibverbs-dev': "the verbs shim's headers and library",
  'librdmacm-dev': "rdma_cm's headers and library",
  perftest: 'ib_write_lat, ib_read_lat, ib_send_lat, ib_write_bw: the reference beside the harness\'s own RDMA numbers',
};

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

function step(name, fn) {
  const s = Date.now();
  try {
    const note = fn();
    console.error(`bootstrap: ${name}: ${note ?? 'ok'} (${((Date.now() - s) / 1000).toFixed(1)} s)`);
  } catch (e) {
    console.error(`bootstrap: ${name} FAILED: ${e.message}`);
    process.exit(1);
  }
}

function missingDebianPackages() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...Object.keys(APT)], { encoding: 'utf8' });
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]));
  return Object.keys(APT).filter((p) => !installed.has(p));
}

step('debian packages', () => {
  const missing = missingDebianPackages();
  if (!missing.length) return 'all present';
  if (process.getuid?.() !== 0) {
    const list = missing.map((p) => `  ${p}: ${APT[p]}`).join('\n');
    console.error(`bootstrap: not root, cannot install:\n${list}\n  the parts that need them will be skipped, with the reason in the results`);
    return `${missing.length} missing (not root)`;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  sh('apt-get', ['update', '-q'], { env });
  sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
  const still = missingDebianPackages();
  if (still.length) throw new Error(`still missing after apt-get install: ${still.join(' ')}`);
  return `installed ${missing.join(' ')}`;
});

step('npm packages', () => {
  // by content, not file dates: a fresh checkout (a clone, a git worktree) has a newer lock file
  // with the same content, and a needless `npm ci` empties node_modules under whoever shares it
  const stamp = path.join(root, 'node_modules', '.fxh-lock-sha256');
  const lock = createHash('sha256').update(fs.readFileSync(path.join(root, 'package-lock.json'))).digest('hex');
  if (fs.existsSync(path.join(root, 'node_modules', '.package-lock.json')) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === lock) return 'up to date';
  sh('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']);
  fs.writeFileSync(stamp, lock);
  return 'installed (npm ci)';
});

step('typescript build', () => {
  sh(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json']);
});

step('function fixtures', () => {
  sh(process.execPath, [path.join(root, 'wasm-fixtures', 'build.mjs')]);
});

step('eBPF programs', () => {
  const build = path.join(root, 'bpf', 'build.mjs');
  if (!fs.existsSync(build)) return 'none yet';
  sh(process.execPath, [build]);
});

step('guest image (SoftRoCE)', () => {
  // Debian's stock kernel (apt-get download, unpacked under build/guest) and a busybox initramfs
  const r = spawnSync(process.execPath, [path.join(root, 'harness', 'setup', 'guest-image.mjs')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`guest-image.mjs exited with ${r.status ?? r.signal}`);
  return r.stdout.trim();
});

step('jupyter tslab kernel', () => {
  if (!fs.existsSync('/usr/bin/python3')) return 'skipped: /usr/bin/python3 missing';
  // Debian's `jupyter` has no kernelspec subcommand: ask jupyter_client directly
  const list = spawnSync('/usr/bin/python3', ['-c', 'import jupyter_client.kernelspec as k; print(" ".join(k.KernelSpecManager().find_kernel_specs()))'], { encoding: 'utf8' });
  if (list.status === 0 && /\btslab\b/.test(list.stdout)) return 'present';
  sh(path.join(root, 'node_modules', '.bin', 'tslab'), ['install', '--python=/usr/bin/python3']);
  return 'installed';
});

console.error(`bootstrap: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
