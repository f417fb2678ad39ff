// One wasm instance (scalar or SIMD128 build) running a kernel on the calling thread.
import type { Case } from './kernels.js';
import { call, clearOutputs, collect, layout, writeInputs, type Layout } from './wasm-layout.js';
import { kernelModule, pagesFor, type Flavour } from './wasm-module.js';

type KernelFn = (...args: number[]) => void;

export class WasmSingle {
  private readonly mem: Uint8Array;
  private readonly l: Layout;
  private readonly fn: KernelFn;
  private readonly args: number[];
  readonly memory: WebAssembly.Memory;

  constructor(flavour: Exclude<Flavour, 'threads'>, c: Case, capPages: number) {
    const module = kernelModule(flavour, capPages);
    // __heap_base is the module's constant: read it from a first instance over a one-page memory
    const probe = new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: capPages }) } });
    const base = (probe.exports.__heap_base as WebAssembly.Global).value as number;
    this.l = layout(c.input, 1, base);
    this.memory = new WebAssembly.Memory({ initial: pagesFor(this.l.end, capPages, `${c.input.kernel} ${c.input.size}`), maximum: capPages });
    const inst = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.mem = new Uint8Array(this.memory.buffer);
    writeInputs(this.mem, c.input, this.l);
    const k = call(this.l, 0);
    this.fn = inst.exports[k.fn] as KernelFn;
    this.args = k.args;
  }

  /** one run; its time in ns (the partials are cleared before, outside the time) */
  run(): number {
    clearOutputs(this.mem, this.l);
    const t0 = process.hrtime.bigint();
    this.fn(...this.args);
    return Number(process.hrtime.bigint() - t0);
  }

  output(): Uint8Array {
    return collect(this.mem, this.l);
  }
}
