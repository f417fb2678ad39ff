// Node kind "local": an agent process on this machine, as the gateway's executors always were,
// optionally pinned (taskset) and born in a cgroup.
import path from 'node:path';
import { agentMain } from '../../paths.js';
import { scratchDir } from '../scratch.js';
import { startProcess } from './process.js';
import { agentArgs, type AgentReady, type NodeKind } from './kind.js';
import fs from 'node:fs';

export const localKind: NodeKind = {
  kind: 'local',
  fields: '(none)',
  validate: () => null,
  async launch(spec, what) {
    // a unix socket needs a folder; one we make goes when the agent stops
    const own = what.listen === undefined && what.workDir === undefined ? scratchDir('node') : null;
    const listen = what.listen ?? `unix:${path.join(what.workDir ?? own!, 'agent.sock')}`;
    const p = await startProcess<AgentReady>({
      cmd: process.execPath,
      args: [agentMain, ...agentArgs(spec.name, what, listen)],
      label: `agent ${spec.name} (local)`,
      cpus: what.cpus,
      cgroup: what.cgroup,
    }).catch((e: Error) => {
      if (own) fs.rmSync(own, { recursive: true, force: true });
      throw e;
    });
    if (own) void p.exited.then(() => fs.rmSync(own, { recursive: true, force: true }));
    return {
      name: spec.name,
      kind: 'local',
      endpoint: p.ready.endpoint,
      ready: p.ready,
      child: p.child,
      stderrTail: p.stderrTail,
      exited: p.exited,
      async stop() {
        await p.stop();
        if (own) fs.rmSync(own, { recursive: true, force: true });
      },
    };
  },
};
