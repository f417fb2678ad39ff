// Agents in network namespaces for the remote fork tests: a parent and a child, throttling the parent's
// side, and the check that nothing of ours is left behind (withPair does all of it around a test) (namespaces, host links, agent processes).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { AgentClient } from '../harness/platform/agent-client.js';
import { hostLinks, namespaces, netnsAvailable } from '../harness/platform/nodes/fabric.js';
import { launchNode } from '../harness/platform/nodes/inventory.js';
import type { LaunchedNode } from '../harness/platform/nodes/kind.js';
import { pidAlive } from '../harness/platform/proc-memory.js';

export const V = 'wasm-fork';
export const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

/** false, or why agents in namespaces cannot run here (a test's skip) */
export const netnsSkip = (): false | string => {
  const n = netnsAvailable();
  return n.ok ? false : n.reason;
};

/** a parent and a child agent of V, each in a namespace of its own */
export async function pair(memoryLimitMiB = 64): Promise<[LaunchedNode, LaunchedNode]> {
  const a = await launchNode({ name: 'parent', kind: 'netns' }, { variants: [V], memoryLimitMiB });
  try {
    return [a, await launchNode({ name: 'child', kind: 'netns' }, { variants: [V], memoryLimitMiB })];
  } catch (e) {
    await a.stop();
    throw e;
  }
}

/** `fn` with a parent and a child agent, and a client of each; then both stop, and nothing of theirs is left */
export async function withPair(fn: (p: { a: LaunchedNode; b: LaunchedNode; parent: AgentClient; child: AgentClient }) => Promise<void>): Promise<void> {
  const [a, b] = await pair();
  try {
    const parent = await AgentClient.connect(a.endpoint);
    const child = await AgentClient.connect(b.endpoint);
    try {
      await fn({ a, b, parent, child });
    } finally {
      parent.close();
      child.close();
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  assertNothingLeft([a, b]);
}

export function assertNothingLeft(nodes: LaunchedNode[]): void {
  assert.deepEqual(namespaces().filter((n) => n.startsWith(`fxh-${process.pid}-`)), []);
  assert.deepEqual(hostLinks().filter((l) => l.startsWith(`fxh${process.pid}f`)), []);
  for (const n of nodes) assert.ok(!pidAlive(n.child.pid!), `agent ${n.name} (pid ${n.child.pid}) is gone`);
}

/** slows the node's side of the fabric so a transfer takes seconds (tbf: netem is not built in here) */
export function throttle(node: LaunchedNode): void {
  const r = spawnSync('ip', ['netns', 'exec', node.netns!, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '16mbit', 'burst', '32kb', 'latency', '10s'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}
