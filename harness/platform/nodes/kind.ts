// What a node kind is: a way to start a node agent somewhere (this machine, a network namespace,
// a host over ssh; later a QEMU guest) and the endpoint it is reached at. One file per kind,
// one line per kind in kinds.ts.
import type { ChildProcess } from 'node:child_process';
import type { AgentInfo } from '../agent.js';
import type { Capability } from '../variant.js';

/** One node of an inventory: a name, a kind, and the kind's own fields. */
export interface NodeSpec {
  name: string;
  kind: string;
  [field: string]: unknown;
}

/** What to run on the node. */
export interface AgentLaunch {
  variants: readonly string[];
  memoryLimitMiB: number;
  /** taskset CPU list on the node's machine */
  cpus?: string;
  /** local: the cgroup v2 directory the agent is born in */
  cgroup?: string;
  /** local: the link endpoint the agent listens on (default a unix socket in workDir) */
  listen?: string;
  /** local: the agent's scratch folder (default its own, removed when it stops) */
  workDir?: string;
}

/** The agent's READY line. */
export interface AgentReady {
  endpoint: string;
  variant: string;
  capability: Capability;
  enforcesTimeouts: boolean;
  info: AgentInfo;
}

export interface LaunchedNode {
  name: string;
  kind: string;
  /** where a client reaches the agent */
  endpoint: string;
  /** netns: the node's network namespace (its link to the fabric is eth0), for shaping with tc */
  netns?: string;
  ready: AgentReady;
  /** the local process we started: the agent itself (local, netns) or its ssh client */
  child: ChildProcess;
  stderrTail(): string;
  exited: Promise<string>;
  /** stops the agent (its lifeline first, then signals) and whatever the kind set up for it */
  stop(): Promise<void>;
}

export interface NodeKind {
  kind: string;
  /** the fields this kind reads, for the inventory's error messages */
  fields: string;
  /** null when the spec is usable, else what is wrong with it */
  validate(spec: NodeSpec): string | null;
  launch(spec: NodeSpec, what: AgentLaunch): Promise<LaunchedNode>;
}

/** The agent's command-line arguments after `agent-main.js`. */
export function agentArgs(name: string, what: AgentLaunch, listen: string): string[] {
  const args = ['--node', name, '--listen', listen, '--memory-mib', String(what.memoryLimitMiB), '--lifeline', 'stdin'];
  for (const v of what.variants) args.push('--variant', v);
  if (what.workDir) args.push('--work-dir', what.workDir);
  return args;
}
