// fork.mjs --netem: the qdisc that shaped the link is in the params and the notes say which and, when
// tbf stood in, why netem was not used; a spec the kernel cannot apply is refused before anything runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { netnsAvailable } from '../harness/platform/nodes/fabric.js';
import { launchNode } from '../harness/platform/nodes/inventory.js';
import { shape, shapingProblem } from '../harness/experiments/fork-remote.js';

const netns = netnsAvailable();
const skip = netns.ok ? false : netns.reason;
// does this kernel have netem? (probed the way shapingProblem does, on a throwaway namespace's loopback)
const hasNetem = spawnSync('unshare', ['-n', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).status === 0;

test('a delay without netem is refused before anything runs, naming tc\'s refusal; a pure rate is fine', { skip }, () => {
  assert.equal(shapingProblem('rate 100mbit'), null);
  const p = shapingProblem('delay 100us rate 1gbit');
  if (hasNetem) assert.equal(p, null);
  else assert.match(p ?? '', /^--netem "delay 100us rate 1gbit": tc refused netem \(.+\); without netem only "rate X" can be emulated \(with tbf\)$/);
});

test('a rate on a node\'s veth: params name the qdisc, the note says why not netem when tbf stood in', { skip }, async () => {
  const node = await launchNode({ name: 'shaped', kind: 'netns' }, { variants: ['wasm-fork'], memoryLimitMiB: 32 });
  try {
    const sh = shape(node, 'rate 100mbit');
    const qdisc = spawnSync('ip', ['netns', 'exec', node.netns!, 'tc', 'qdisc', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).stdout;
    if (hasNetem) {
      assert.equal(sh.params, 'netem=rate_100mbit');
      assert.match(qdisc, /qdisc netem .*rate 100Mbit/);
    } else {
      assert.equal(sh.params, 'tbf=rate_100mbit');
      assert.match(sh.note, /^shaping: --netem "rate 100mbit" was applied as tc tbf rate 100mbit burst 256kb latency 10s on every node's eth0, because tc refused netem here \(.+\); tbf shapes the rate only \(no delay, jitter or loss\)$/);
      assert.match(qdisc, /qdisc tbf .*rate 100Mbit/, qdisc);
    }
  } finally {
    await node.stop();
  }
});
