// The `cold-process` mode's child: a new process that compiles, instantiates and runs one WASM
// function once, stdin to stdout, then exits; the counterpart of one `runc run`. It loads only the
// engine, not the harness. Exit status: 0 ok; 3 the function failed (kind and message on stderr).
// Usage: process-main.js <module.wasm> <name> <reactor|command> <max pages>
import fs from 'node:fs';
import { InvokeError } from '../../platform/variant.js';
import { compile, instantiate, run, type WasmCode } from './engine.js';

const [file, name, abi, pages] = process.argv.slice(2);
const code: WasmCode = { name: name!, path: file!, abi: abi === 'command' ? 'command' : 'reactor' };
const maxPages = Number(pages);
try {
  const input = fs.readFileSync(0);
  const live = instantiate(code, compile(code, fs.readFileSync(file!)), maxPages);
  const out = run(code, live, input, maxPages);
  process.stdout.write(out);
} catch (e) {
  const kind = e instanceof InvokeError ? e.kind : 'function-error';
  fs.writeSync(2, `${kind}: ${(e as Error).message}\n`);
  process.exitCode = 3;
}
