// A minimal in-memory WASI preview1 host: stdin comes from a buffer, stdout/stderr go to buffers.
// No files, sockets or environment: functions are pure stdin -> stdout. Imports it does not
// implement answer ENOSYS, so a module that merely links them still instantiates.
import { randomFillSync } from 'node:crypto';

const ESUCCESS = 0;
const EBADF = 8;
const ENOSYS = 52;
const ESPIPE = 70;
const FILETYPE_CHARACTER_DEVICE = 2;

/** Thrown by proc_exit to unwind out of the module. */
export class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

export class WasiHost {
  private memory: WebAssembly.Memory | null = null;
  private view: DataView | null = null;
  private bytes: Uint8Array | null = null;
  private stdin: Uint8Array = new Uint8Array(0);
  private stdinPos = 0;
  private stdout: Uint8Array[] = [];
  private stderr: Uint8Array[] = [];
  private stderrBytes = 0;

  constructor(readonly args: string[] = ['fx']) {}

  bind(memory: WebAssembly.Memory): void {
    this.memory = memory;
    this.view = null;
  }

  /** Prepares one invocation. */
  reset(input: Uint8Array): void {
    this.stdin = input;
    this.stdinPos = 0;
    this.stdout = [];
    this.stderr = [];
    this.stderrBytes = 0;
  }

  takeStdout(): Uint8Array {
    return concat(this.stdout);
  }

  stderrText(max = 2000): string {
    return Buffer.from(concat(this.stderr)).toString('utf8').slice(-max);
  }

  // Memory can grow (which detaches the old buffer), so views are refreshed when it did.
  private mem(): { view: DataView; bytes: Uint8Array } {
    const buf = this.memory!.buffer;
    if (!this.view || this.view.buffer !== buf) {
      this.view = new DataView(buf);
      this.bytes = new Uint8Array(buf);
    }
    return { view: this.view, bytes: this.bytes! };
  }

  /** The import object for `module`: our functions, and ENOSYS stubs for the rest of WASI it names. */
  imports(module: WebAssembly.Module): WebAssembly.Imports {
    const impl = this.functions();
    const wasi: Record<string, WebAssembly.ImportValue> = {};
    for (const name of wasiImportNames(module)) wasi[name] = impl[name] ?? (() => ENOSYS);
    return { wasi_snapshot_preview1: wasi };
  }

  private functions(): Record<string, (...a: never[]) => number | bigint | void> {
    return {
      fd_read: (fd: number, iovs: number, iovsLen: number, nreadPtr: number) => {
        if (fd !== 0) return EBADF;
        const { view, bytes } = this.mem();
        let n = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = view.getUint32(iovs + i * 8, true);
          const len = view.getUint32(iovs + i * 8 + 4, true);
          const take = Math.min(len, this.stdin.length - this.stdinPos);
          if (take <= 0) break;
          bytes.set(this.stdin.subarray(this.stdinPos, this.stdinPos + take), ptr);
          this.stdinPos += take;
          n += take;
        }
        view.setUint32(nreadPtr, n, true);
        return ESUCCESS;
      },
      fd_write: (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) => {
        if (fd !== 1 && fd !== 2) return EBADF;
        const { view, bytes } = this.mem();
        let n = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = view.getUint32(iovs + i * 8, true);
          const len = view.getUint32(iovs + i * 8 + 4, true);
          if (len === 0) continue;
          const chunk = bytes.slice(ptr, ptr + len);
          if (fd === 1) this.stdout.push(chunk);
          else if (this.stderrBytes < 64 * 1024) {
            this.stderr.push(chunk);
            this.stderrBytes += len;
          }
          n += len;
        }
        view.setUint32(nwrittenPtr, n, true);
        return ESUCCESS;
      },
      fd_fdstat_get: (fd: number, ptr: number) => {
        if (fd > 2) return EBADF;
        const { view } = this.mem();
        view.setUint8(ptr, FILETYPE_CHARACTER_DEVICE);
        view.setUint16(ptr + 2, 0, true);
        // rights: everything but seek/tell, so libc treats the stream as a pipe
        view.setBigUint64(ptr + 8, 0xffffn & ~0x4n & ~0x20n, true);
        view.setBigUint64(ptr + 16, 0n, true);
        return ESUCCESS;
      },
      fd_seek: () => ESPIPE,
      fd_close: () => ESUCCESS,
      fd_prestat_get: () => EBADF,
      fd_prestat_dir_name: () => EBADF,
      environ_sizes_get: (countPtr: number, sizePtr: number) => {
        const { view } = this.mem();
        view.setUint32(countPtr, 0, true);
        view.setUint32(sizePtr, 0, true);
        return ESUCCESS;
      },
      environ_get: () => ESUCCESS,
      args_sizes_get: (argcPtr: number, sizePtr: number) => {
        const { view } = this.mem();
        view.setUint32(argcPtr, this.args.length, true);
        view.setUint32(sizePtr, this.args.reduce((s, a) => s + Buffer.byteLength(a) + 1, 0), true);
        return ESUCCESS;
      },
      args_get: (argvPtr: number, bufPtr: number) => {
        const { view, bytes } = this.mem();
        let p = bufPtr;
        this.args.forEach((a, i) => {
          view.setUint32(argvPtr + i * 4, p, true);
          const b = Buffer.from(a + '\0');
          bytes.set(b, p);
          p += b.length;
        });
        return ESUCCESS;
      },
      clock_time_get: (_id: number, _precision: bigint, ptr: number) => {
        this.mem().view.setBigUint64(ptr, process.hrtime.bigint(), true);
        return ESUCCESS;
      },
      clock_res_get: (_id: number, ptr: number) => {
        this.mem().view.setBigUint64(ptr, 1n, true);
        return ESUCCESS;
      },
      random_get: (ptr: number, len: number) => {
        randomFillSync(this.mem().bytes, ptr, len);
        return ESUCCESS;
      },
      sched_yield: () => ESUCCESS,
      proc_exit: (code: number) => {
        throw new WasiExit(code);
      },
    };
  }
}

// Module.imports() is reflection and costs microseconds: once per module is enough.
const importNames = new WeakMap<WebAssembly.Module, string[]>();
function wasiImportNames(module: WebAssembly.Module): string[] {
  let names = importNames.get(module);
  if (!names) {
    names = WebAssembly.Module.imports(module).filter((i) => i.module === 'wasi_snapshot_preview1' && i.kind === 'function').map((i) => i.name);
    importNames.set(module, names);
  }
  return names;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
