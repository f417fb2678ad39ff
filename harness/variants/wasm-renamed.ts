// The wasm variant under another name and capability check (wasm+sockmap, wasm+tcp): the runtime is
// the same; what differs is how its executor is reached. Not a plug-in itself (no default export).
import wasmPlugin from './wasm.js';
import { InvokeError, type Capability, type Variant, type VariantOptions } from '../platform/variant.js';

/** `check` also guards every invocation: where it fails, the variant refuses to run (with the reason)
 *  rather than measure something other than what its name says. */
export function renamedWasm(name: string, opts: VariantOptions, check: () => Promise<Capability>): Variant {
  const inner = wasmPlugin.create(opts);
  let placed: Promise<Capability> | null = null;
  return {
    name,
    modes: inner.modes,
    enforcesTimeouts: inner.enforcesTimeouts,
    check,
    supports: (fn, mode) => inner.supports(fn, mode),
    async invoke(fn, mode, input, o) {
      const cap = await (placed ??= check());
      if (!cap.ok) throw new InvokeError('unavailable', `${name}: ${cap.reason}`);
      return inner.invoke(fn, mode, input, o);
    },
    startIdle: inner.startIdle ? (fn, o) => inner.startIdle!(fn, o) : undefined,
    holdIdle: inner.holdIdle ? (fn, input) => inner.holdIdle!(fn, input) : undefined,
    teardown: () => inner.teardown(),
  };
}
