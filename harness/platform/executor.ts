// An executor serves invocations of one variant over any transport connection.
import type net from 'node:net';
import type { FunctionEntry } from '../functions/types.js';
import { encodeResponse, errorResponse, responseFrame, type FrameBytes, type InvokeFrame } from './protocol.js';
import { onFrames, writeFrame } from './frame-stream.js';

const PONG = new Uint8Array(0);
import { InvokeError, type Variant } from './variant.js';

export interface FunctionLookup {
  get(name: string): FunctionEntry;
}

export class Executor {
  constructor(
    readonly variant: Variant,
    private readonly functions: FunctionLookup,
  ) {}

  serve(socket: net.Socket): void {
    socket.setNoDelay?.(true);
    onFrames(socket, (frames) => {
      // Answers to one burst of requests leave in as few writes as possible.
      socket.cork();
      for (const frame of frames) {
        if (frame instanceof Error) {
          socket.write(errorResponse(0, 'bad-request', frame.message));
          continue;
        }
        // a liveness probe of the gateway: answering proves no function holds the event loop
        if (frame.type === 'ping') {
          socket.write(encodeResponse({ id: frame.id, status: 'ok', serverNs: 0, payload: PONG }));
          continue;
        }
        if (frame.type !== 'invoke') continue;
        void this.handle(frame).then((reply) => socket.writable && writeFrame(socket, reply));
      }
      process.nextTick(() => socket.uncork());
    });
    socket.on('error', () => socket.destroy());
  }

  private async handle(f: InvokeFrame): Promise<Buffer | FrameBytes> {
    if (f.variant !== this.variant.name) {
      return errorResponse(f.id, 'bad-request', `this executor serves variant "${this.variant.name}", not "${f.variant}"`);
    }
    let fn: FunctionEntry;
    try {
      fn = this.functions.get(f.fn);
    } catch (e) {
      return errorResponse(f.id, 'bad-request', (e as Error).message);
    }
    if (!this.variant.modes.includes(f.mode)) {
      return errorResponse(f.id, 'unavailable', `variant ${this.variant.name} has no mode "${f.mode}"; its modes: ${this.variant.modes.join(', ')}`);
    }
    const why = this.variant.supports(fn, f.mode);
    if (why) return errorResponse(f.id, 'unavailable', why);
    try {
      const r = await this.variant.invoke(fn, f.mode, f.payload, { timeoutMs: f.timeoutMs });
      return responseFrame({ id: f.id, status: 'ok', serverNs: r.elapsedNs, payload: r.output });
    } catch (e) {
      if (e instanceof InvokeError) return errorResponse(f.id, e.kind, e.message);
      return errorResponse(f.id, 'function-error', `${fn.name}: ${(e as Error).message ?? String(e)}`);
    }
  }
}
