// Ring buffers polled with a koffi callback.
import koffi from 'koffi';
import { LibbpfError } from './errors.js';
import { L, Ptr, check, errno } from './ffi.js';
import { BpfMap } from './program-map.js';
import { AttachHandle, Handle } from './registry.js';

/** ring_buffer__new over a BPF_MAP_TYPE_RINGBUF map; `onSample` gets a copy of each record. */
export class RingBuffer {
  private readonly rb: Ptr;
  private readonly cb: unknown;
  private readonly handle: AttachHandle;

  constructor(map: BpfMap, onSample: (data: Buffer) => void | number) {
    const l = L();
    this.cb = koffi.register(
      (_ctx: unknown, data: unknown, size: number | bigint): number => {
        const r = onSample(Buffer.from(koffi.view(data, Number(size))).subarray(0));
        return typeof r === 'number' ? r : 0;
      },
      koffi.pointer('fxh_ring_buffer_sample_fn'),
    );
    const rb = l.ring_buffer__new(map.fd, this.cb, null, null);
    if (rb === null) {
      const e = errno();
      koffi.unregister(this.cb as never);
      throw new LibbpfError(`ring_buffer__new ${map.name}`, e || 22);
    }
    this.rb = rb;
    this.handle = new Handle(`ring buffer on ${map.name}`, 1, () => {
      l.ring_buffer__free(rb);
      koffi.unregister(this.cb as never);
    });
  }

  /** Waits up to timeoutMs (blocking this thread) and consumes; returns the number of records. */
  poll(timeoutMs: number): number {
    if (this.handle.detached) throw new Error('ring buffer is freed');
    return check('ring_buffer__poll', L().ring_buffer__poll(this.rb, timeoutMs));
  }

  /** Consumes what is there without waiting. */
  consume(): number {
    if (this.handle.detached) throw new Error('ring buffer is freed');
    return check('ring_buffer__consume', L().ring_buffer__consume(this.rb));
  }

  /** for an event loop: readable when records are there (e.g. koffi.node.poll(fd, cb) then consume()) */
  get epollFd(): number {
    return L().ring_buffer__epoll_fd(this.rb);
  }

  free(): void {
    this.handle.detach();
  }
}

