// Kernel splicing of two connections, as the gateway sees it. A gateway started with a Splicer can
// hand a client's connection to an executor: after join(), what the client sends arrives at the
// executor's end of a dedicated connection and the executor's answers arrive at the client, without
// waking the gateway. The gateway still decides which executor, and unjoins when either side closes.
// The only implementation is the sockmap one (harness/bpf/splice-map.ts); the gateway knows no eBPF.
import type net from 'node:net';

export interface Splicer {
  /** Joins the peers of two established connections of this process; returns the undo (idempotent). */
  join(client: net.Socket, executor: net.Socket): () => void;
  /** what does the joining, for messages */
  readonly describe: string;
}
