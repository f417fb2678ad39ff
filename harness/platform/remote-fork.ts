// Remote fork between node agents, at the level of the agent protocol: a parent agent snapshots a warm
// instance and registers it as regions of its link (snapshot-register); a child agent forks from a
// peer's regions, pulling bytes with region reads only (fork-from; streamed where the link can), and answers the child's first
// call. What a snapshot is, and how pages are pulled, is the variant's business (RemoteForker).
import type { FunctionEntry } from '../functions/types.js';
import type { PayloadSink } from './frame-stream.js';
import type { RegionTable } from './link.js';

/** eager: the whole memory image; dirty: only pages differing from the initial image; prefetch: the
 *  recorded working set first, the call, then the rest in the background; lazy: pages on fault */
export const REMOTE_COPY_MODES = ['eager', 'dirty', 'prefetch', 'lazy'] as const;
export type RemoteCopy = (typeof REMOTE_COPY_MODES)[number];

/** What a parent answers to snapshot-register; handed unchanged to a child's fork-from. */
export interface SnapshotDescriptor {
  variant: string;
  fn: string;
  /** the encoded snapshot (header + dirty pages) */
  region: string;
  headerBytes: number;
  totalBytes: number;
  /** the whole memory image, for eager copies */
  imageRegion: string;
  imageBytes: number;
  pages: number;
  /** pages of the recorded working set, and whether a fork holding only them answered as a full one */
  workingSetPages: number;
  /** the working set's pages as byte ranges [offset, end) of `region`, so a prefetch child asks for them with the header */
  workingSetRanges?: [number, number][];
  workingSetValidated: boolean;
  /** how the working set was recorded (the variant says; e.g. by the kernel watching accesses, or by writes) */
  workingSetMethod: string;
  /** ns the recording and its check took, and what watching cost the call: watched vs unwatched, the eBPF program's kernel time */
  workingSetNs: number;
  workingSetWatchedCallNs?: number;
  workingSetPlainCallNs?: number;
  workingSetProgramNs?: number;
  /** ns the parent spent: warm-up calls, then snapshot + encode + working set */
  parentCallsNs: number;
  snapshotNs: number;
}

export interface ForkFromRequest {
  /** where the parent agent listens */
  peer: string;
  snapshot: SnapshotDescriptor;
  copy: RemoteCopy;
  /** the child's first call */
  input: Uint8Array;
}

/** What a child answers: its first call's output and what the fork took. */
export interface ForkResult {
  output: Uint8Array;
  /** ns: from the request's arrival to the instance ready (pull + restore), and to the output */
  forkNs: number;
  firstResponseNs: number;
  /** bytes pulled before the first response, and in all (prefetch goes on after it) */
  bytesBeforeResponse: number;
  bytesMoved: number;
  /** the child instance's linear memory (the node's RSS after the answer: AgentInfo.memory.lastForkRssBytes) */
  childMemoryBytes: number;
  /** where the child's time went, ns per named step in order (the variant names them) */
  phasesNs?: Record<string, number>;
}

/** The parent's regions as a child reads them: each read streamed to a sink as its bytes arrive (a Link's regionStream). */
export interface RegionSource {
  stream(id: string, offset: number, length: number, sink: PayloadSink): Promise<void>;
}

/** A variant that can take part in remote forks. */
export interface RemoteForker {
  /** parent: a warm instance of `fn` that served `calls` calls of `input`, snapshotted into `regions` (replacing its previous snapshot) */
  snapshotRegister(fn: FunctionEntry, input: Uint8Array, calls: number, regions: RegionTable): Promise<SnapshotDescriptor>;
  /** child: a new instance from the peer's regions, which serves `req.input` once */
  forkFrom(fn: FunctionEntry, req: ForkFromRequest, src: RegionSource): Promise<ForkResult>;
  /** the reads a child forking from `d` makes before its answer, in the order it makes them: what a
   *  parent pushes instead (optional: without it, children only pull) */
  pushPlan?(d: SnapshotDescriptor, copy: RemoteCopy): RegionPiece[];
}

/** `length` bytes at `offset` of region `region` */
export interface RegionPiece {
  region: string;
  offset: number;
  length: number;
}

export function isRemoteForker(v: unknown): v is RemoteForker {
  return typeof (v as RemoteForker)?.snapshotRegister === 'function' && typeof (v as RemoteForker)?.forkFrom === 'function';
}
