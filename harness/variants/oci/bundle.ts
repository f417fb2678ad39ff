// OCI bundles for the container variant, built without any image or registry:
//   <workDir>/bundles/<fn>/rootfs/fx          the static native binary (hard link, else copy)
//   <workDir>/bundles/<fn>/rootfs/{proc,dev,sys,tmp}
//   <workDir>/bundles/<fn>/config.json        cold:  process.args ['/fx']
//   <workDir>/bundles/<fn>/serve/config.json  warm:  process.args ['/fx', '--serve'] (same rootfs, absolute path)
// config.json is written directly (the shape of `runc spec` for runtime-spec 1.0.2, adjusted).
// A bundle is rebuilt only when the binary (device, inode, size, mtime) or the settings changed.
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

/** bump when ociConfig() changes, so old bundles are rebuilt */
const CONFIG_VERSION = 1;

export interface OciConfigParams {
  args: string[];
  hostname: string;
  env: string[];
  memoryLimitMiB: number;
  pidsLimit: number;
  /** absolute path, or relative to the bundle (default 'rootfs') */
  rootPath?: string;
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** A runtime-spec config: read-only root, no terminal, default namespaces (pid, network, ipc, uts, mount), memory and pids limits. */
export function ociConfig(p: OciConfigParams): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: p.args,
      env: ['PATH=/', ...p.env],
      cwd: '/',
      capabilities: {
        bounding: DEFAULT_CAPS,
        effective: DEFAULT_CAPS,
        permitted: DEFAULT_CAPS,
        ambient: DEFAULT_CAPS,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: p.rootPath ?? 'rootfs', readonly: true },
    hostname: p.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      // no cgroupsPath: the runtime creates <its own cgroup>/<container id> in every hierarchy
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        memory: { limit: p.memoryLimitMiB * 1024 * 1024 },
        pids: { limit: p.pidsLimit },
      },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface BundleSpec {
  /** function name: the bundle directory name (must match [A-Za-z0-9_.-]+) */
  name: string;
  /** the static binary to run as /fx */
  binary: string;
  memoryLimitMiB: number;
  /** default 64 */
  pidsLimit?: number;
}

export interface Bundle {
  /** bundle directory of `/fx` (cold) */
  coldDir: string;
  /** bundle directory of `/fx --serve` (warm) */
  serveDir: string;
  rootfs: string;
  /** true when this call (re)built it */
  built: boolean;
}

function fingerprint(spec: BundleSpec): string {
  const st = statSync(spec.binary);
  return JSON.stringify({
    v: CONFIG_VERSION,
    binary: spec.binary,
    dev: st.dev,
    ino: st.ino,
    size: st.size,
    mtimeMs: st.mtimeMs,
    mem: spec.memoryLimitMiB,
    pids: spec.pidsLimit ?? 64,
  });
}

/** Builds (or reuses) the bundle of one function under `<workDir>/bundles/<name>/`. */
export function ensureBundle(workDir: string, spec: BundleSpec): Bundle {
  if (!/^[A-Za-z0-9_.-]+$/.test(spec.name) || spec.name.startsWith('.')) throw new Error(`bad bundle name ${JSON.stringify(spec.name)}`);
  const dir = join(workDir, 'bundles', spec.name);
  const rootfs = join(dir, 'rootfs');
  const serveDir = join(dir, 'serve');
  const stampFile = join(dir, 'stamp.json');
  const fp = fingerprint(spec);
  const intact = (): boolean =>
    existsSync(join(rootfs, 'fx')) && existsSync(join(dir, 'config.json')) && existsSync(join(serveDir, 'config.json'));
  try {
    if (readFileSync(stampFile, 'utf8') === fp && intact()) return { coldDir: dir, serveDir, rootfs, built: false };
  } catch {
    /* no stamp: build */
  }
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
  mkdirSync(serveDir, { recursive: true });
  const fx = join(rootfs, 'fx');
  try {
    linkSync(spec.binary, fx);
  } catch {
    copyFileSync(spec.binary, fx); // another filesystem (EXDEV) or no hard links
    chmodSync(fx, 0o755);
  }
  const hostname = `fxh-${spec.name.replace(/[^A-Za-z0-9-]/g, '-')}`.slice(0, 63);
  const common = {
    hostname,
    env: [`FX_MEM_LIMIT_MB=${spec.memoryLimitMiB}`],
    memoryLimitMiB: spec.memoryLimitMiB,
    pidsLimit: spec.pidsLimit ?? 64,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(ociConfig({ ...common, args: ['/fx'] }), null, 1));
  writeFileSync(join(serveDir, 'config.json'), JSON.stringify(ociConfig({ ...common, args: ['/fx', '--serve'], rootPath: rootfs }), null, 1));
  writeFileSync(stampFile, fp);
  return { coldDir: dir, serveDir, rootfs, built: true };
}
