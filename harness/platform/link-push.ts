// Pushed region pieces (Link.pushRegion / expectPush): the receiving side's bookkeeping, for a link over
// a stream. Pieces of a tag are taken in order by the sinks that expect them; a piece that arrives
// before it is expected stops the link's reader (HOLD) until it is, or until PUSH_HOLD_MS, when its tag
// is given up and its pieces are read and dropped. A piece cannot be skipped: what follows it on the
// stream waits, which is why the hold is short and a closed or timed-out tag is dropped, never held.
import { HOLD, guardedSink, type PayloadSink } from './frame-stream.js';

/** how long an unexpected pushed piece may hold a link before it is dropped */
export const PUSH_HOLD_MS = 2000;

interface ExpectedPiece {
  index: number;
  length: number;
  sink: PayloadSink;
  resolve: () => void;
  reject: (e: Error) => void;
}

const DISCARD: PayloadSink = { data: () => {}, end: () => {} };
/** given-up tags remembered, so their late pieces are dropped rather than held */
const DROPPED_KEPT = 64;

export class PushInbox {
  private readonly expected = new Map<number, ExpectedPiece[]>();
  private readonly dropped = new Map<number, string>();
  /** the piece (tag, index) the reader stopped before, and the timer that drops it */
  private holding: { tag: number; index: number; timer: NodeJS.Timeout } | null = null;

  /** `hold`: stop reading the link; `release`: parse what was held, then read on */
  constructor(
    private readonly peer: string,
    private readonly hold: () => void,
    private readonly release: () => void,
  ) {}

  /** pieces are expected: the link should read so they can land in place */
  get waiting(): boolean {
    return this.expected.size > 0;
  }

  /** where a region-push frame's body goes, from its routing head (type, tag, index) and body length */
  route(head: Buffer, got: number): PayloadSink | typeof HOLD {
    const tag = head.readUInt32LE(1);
    const index = head[5]!;
    if (this.dropped.has(tag)) return DISCARD;
    const xs = this.expected.get(tag);
    const x = xs?.[0];
    if (!xs || !x) {
      if (!this.holding) {
        const timer = setTimeout(() => this.drop(tag, `a pushed piece of tag ${tag} from ${this.peer} was not expected within ${PUSH_HOLD_MS} ms: dropped`), PUSH_HOLD_MS);
        timer.unref();
        this.holding = { tag, index, timer };
        this.hold();
      }
      return HOLD;
    }
    if ((x.index & 0xff) !== index) {
      this.drop(tag, `${this.peer} pushed piece ${index} of tag ${tag} where piece ${x.index & 0xff} was due`);
      return DISCARD;
    }
    xs.shift();
    if (!xs.length) this.expected.delete(tag);
    return guardedSink(x.sink, x.length, got, () => `${this.peer} pushed ${got} bytes as piece ${x.index} of tag ${tag}, expected ${x.length}`, (failed) => (failed ? x.reject(failed) : x.resolve()));
  }

  expect(tag: number, index: number, length: number, sink: PayloadSink): Promise<void> {
    const why = this.dropped.get(tag);
    if (why !== undefined) return Promise.reject(new Error(why));
    return new Promise<void>((resolve, reject) => {
      const xs = this.expected.get(tag) ?? [];
      xs.push({ index, length, sink, resolve, reject });
      this.expected.set(tag, xs);
      if (this.holding?.tag === tag && this.holding.index === (xs[0]!.index & 0xff)) this.unhold();
    });
  }

  /** gives up tag `tag`: its expected pieces fail with `why`, its pieces still to come are dropped */
  drop(tag: number, why: string): void {
    if (this.dropped.size >= DROPPED_KEPT) this.dropped.delete(this.dropped.keys().next().value!);
    this.dropped.set(tag, why);
    for (const x of this.expected.get(tag) ?? []) x.reject(new Error(why));
    this.expected.delete(tag);
    if (this.holding?.tag === tag) this.unhold();
  }

  /** the link ended: every expected piece fails */
  end(why: Error | null): void {
    for (const [tag, xs] of this.expected) for (const x of xs) x.reject(new Error(`the link to ${this.peer} ended before piece ${x.index} of pushed tag ${tag}${why ? `: ${why.message}` : ''}`));
    this.expected.clear();
    if (this.holding) clearTimeout(this.holding.timer);
    this.holding = null;
  }

  private unhold(): void {
    if (!this.holding) return;
    clearTimeout(this.holding.timer);
    this.holding = null;
    this.release();
  }
}

type Stream = (id: string, offset: number, length: number, sink: PayloadSink) => Promise<void>;

/** the side of a Link that takes pushes */
interface PushTaker {
  readonly peer: string;
  expectPush?(tag: number, index: number, length: number, sink: PayloadSink): Promise<void>;
  dropPushes?(tag: number, why: string): void;
}

/**
 * Reads whose first `pieces` are the pieces the peer pushes as `tag` (expectPush), each given up after
 * `waitMs`; later ones go to `read`. close(): pieces still to come are dropped.
 */
export function pushedReads(link: PushTaker, tag: number, pieces: number, waitMs: number, read: Stream): { stream: Stream; close: () => void } {
  if (!link.expectPush || !link.dropPushes) throw new Error(`the link to ${link.peer} cannot take pushed pieces`);
  let k = 0;
  return {
    stream(id, offset, length, sink) {
      if (k >= pieces) return read(id, offset, length, sink);
      const index = k++;
      const timer = setTimeout(() => link.dropPushes!(tag, `piece ${index} of tag ${tag} ([${offset}, ${offset + length}) of region "${id}") was not pushed by ${link.peer} within ${waitMs} ms`), waitMs);
      return link.expectPush!(tag, index, length, sink).finally(() => clearTimeout(timer));
    },
    close: () => link.dropPushes!(tag, `the fork that took tag ${tag} is over`),
  };
}
