// Remote fork over RDMA: inside the SoftRoCE guest, a child agent forks a parent's warm instance with
// one-sided RDMA READs of its snapshot regions, and answers as the parent would; the same over TCP
// across the same veth. The guest half is test/guest/remote-fork.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildDir } from '../harness/paths.js';
import { guestUnavailable, runInGuest } from '../harness/rdma/guest.js';

const unavailable = guestUnavailable();

test('remote fork in the guest over tcp and rdma: the child answers with the parent\'s state in every copy mode', { skip: unavailable ?? false, timeout: 600_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-rdma-fork-'));
  try {
    const r = await runInGuest({ command: [process.execPath, path.join(buildDir, 'test', 'guest', 'remote-fork.js'), 'tcp', 'rdma'], outDir: out, timeoutMs: 560_000 });
    assert.equal(r.exitCode, 0, r.output);
    const lines = r.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const scheme of ['tcp', 'rdma']) {
      const mine = lines.filter((l) => l.scheme === scheme);
      assert.deepEqual(mine.filter((l) => l.error), [], `${scheme}: ${r.output.slice(-2000)}`);
      const counter = mine.filter((l) => l.check === 'counter');
      assert.deepEqual(counter.map((l) => l.copy), ['eager', 'dirty', 'prefetch'], scheme);
      for (const l of counter) assert.equal(l.output, '4\n', `${scheme} ${String(l.copy)}`);
      const fill = mine.filter((l) => l.check === 'statefill');
      assert.equal(fill.length, 2, scheme);
      for (const l of fill) assert.equal(l.ok, true, `${scheme} statefill ${String(l.copy)}`);
      const ends = mine.find((l) => l.endpoints)?.endpoints as string[];
      assert.ok(ends.every((e) => e.startsWith(`${scheme}:`)), `${scheme}: the agents listened on ${ends.join(', ')}`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
