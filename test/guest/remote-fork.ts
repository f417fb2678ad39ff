// Runs inside the SoftRoCE guest (test/rdma-fork.test.ts boots it): remote fork between two agents on
// the two ends of the guest's veth, over each transport named on the command line (tcp, rdma). Over
// rdma the child pulls the parent's pages with one-sided RDMA READs. Prints one JSON line per check.
import { AgentClient } from '../../harness/platform/agent-client.js';
import { launchNode } from '../../harness/platform/nodes/inventory.js';
import { statefillAnswer } from '../../harness/functions/workloads/statefill.js';

const V = 'wasm-fork';
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const addrA = process.env.FXH_GUEST_ADDR_A ?? '10.77.0.1';
const addrB = process.env.FXH_GUEST_ADDR_B ?? '10.77.0.2';

for (const scheme of process.argv.slice(2)) {
  const out = (o: Record<string, unknown>) => console.log(JSON.stringify({ scheme, ...o }));
  const launch = (name: string, addr: string) => launchNode({ name, kind: 'local' }, { variants: [V], memoryLimitMiB: 64, listen: `${scheme}:${addr}:0` });
  let a, b;
  try {
    a = await launch('parent', addrA);
    b = await launch('child', addrB);
  } catch (e) {
    out({ error: (e as Error).message });
    await a?.stop();
    continue;
  }
  try {
    const parent = await AgentClient.connect(a.endpoint);
    const child = await AgentClient.connect(b.endpoint);
    const d = await parent.snapshotRegister(V, 'counter', new Uint8Array(0), 3);
    for (const copy of ['eager', 'dirty', 'prefetch'] as const) {
      const r = await child.forkFrom(a.endpoint, d, copy, new Uint8Array(0));
      out({ check: 'counter', copy, output: text(r.output), expected: '4\n', bytesMoved: r.bytesMoved, forkNs: r.forkNs, firstResponseNs: r.firstResponseNs });
    }
    const s = await parent.snapshotRegister(V, 'statefill', Buffer.from('2'), 1);
    for (const copy of ['eager', 'dirty'] as const) {
      const r = await child.forkFrom(a.endpoint, s, copy, Buffer.from('2'));
      out({ check: 'statefill', copy, ok: text(r.output) === statefillAnswer(2, 2), bytesMoved: r.bytesMoved, firstResponseNs: r.firstResponseNs });
    }
    parent.close();
    child.close();
    out({ endpoints: [a.endpoint, b.endpoint] });
  } catch (e) {
    out({ error: (e as Error).message });
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}
