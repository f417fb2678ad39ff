// Node kind "netns": an agent in a network namespace of its own, joined to this host and the other
// nodes by a veth on the run's fabric (fabric.ts), reached over TCP at the namespace's address.
import os from 'node:os';
import { agentMain } from '../../paths.js';
import { pidAlive } from '../proc-memory.js';
import { cleanupStaleScratch } from '../scratch.js';
import { startProcess } from './process.js';
import { acquireFabric, releaseFabric, type NamespaceNode } from './fabric.js';
import { agentArgs, type AgentReady, type NodeKind } from './kind.js';

export const netnsKind: NodeKind = {
  kind: 'netns',
  fields: '(none)',
  validate: () => null,
  async launch(spec, what) {
    const fabric = acquireFabric();
    let node: NamespaceNode;
    try {
      node = fabric.addNode(spec.name);
    } catch (e) {
      releaseFabric(fabric);
      throw e;
    }
    let cleaned = false;
    const cleanup = () => {
      if (cleaned) return;
      cleaned = true;
      node.remove();
      releaseFabric(fabric);
    };
    let p;
    try {
      p = await startProcess<AgentReady>({
        cmd: 'ip',
        args: ['netns', 'exec', node.ns, process.execPath, agentMain, ...agentArgs(spec.name, { ...what, workDir: undefined }, `tcp:${node.address}:0`)],
        label: `agent ${spec.name} (netns ${node.ns})`,
        cpus: what.cpus,
        cgroup: what.cgroup,
      });
    } catch (e) {
      cleanup();
      throw e;
    }
    const started = p;
    return {
      name: spec.name,
      kind: 'netns',
      endpoint: started.ready.endpoint,
      netns: node.ns,
      ready: started.ready,
      child: started.child,
      stderrTail: started.stderrTail,
      exited: started.exited,
      async stop() {
        await started.stop();
        cleanup();
        // an agent killed by SIGKILL (a test, the OOM killer) could not remove its scratch folder
        const pid = started.child.pid;
        if (pid) cleanupStaleScratch(os.tmpdir(), (p) => p !== pid || pidAlive(p), { what: 'agent' });
      },
    };
  },
};
