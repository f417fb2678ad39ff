// The native baseline as root runs functions as nobody, without capabilities, each in a cgroup with the
// container's limits. /bin/sh stands in for a user's function: it runs what stdin says.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog } from '../harness/functions/catalog.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import nativePlugin, { NativeVariant } from '../harness/variants/native.js';
import { rejectsWith } from './helpers.js';

const root = (process.getuid?.() ?? 1) === 0;
let workDir: string;
let v: NativeVariant;
const sh = { name: 'sh', summary: 'a shell reading commands from stdin', origin: 'user', testOnly: true, native: '/bin/sh' } as unknown as FunctionEntry;
const run = async (cmd: string, mode: 'cold' | 'warm' = 'cold'): Promise<string> =>
  Buffer.from((await v.invoke(sh, mode, Buffer.from(cmd), { timeoutMs: 10_000 })).output).toString().trim();

before(() => {
  workDir = mkdtempSync(join(tmpdir(), 'fxh-nativeiso-'));
  v = nativePlugin.create({ workDir, memoryLimitMiB: 64 }) as NativeVariant;
});
after(async () => {
  await v.teardown();
  rmSync(workDir, { recursive: true, force: true });
});

describe('native variant isolation (as root)', { skip: root ? false : 'needs root' }, () => {
  test('/etc/shadow is root-only here (the premise of the next test)', () => {
    assert.equal(statSync('/etc/shadow').mode & 0o004, 0);
  });

  test('a native function cannot read a file only root may read', async () => {
    await rejectsWith(v.invoke(sh, 'cold', Buffer.from('cat /etc/shadow'), { timeoutMs: 10_000 }), 'function-error', /Permission denied/);
  });

  test('it runs as nobody with no supplementary groups and no capabilities', async () => {
    assert.equal(await run('id -u; id -g; id -G'), '65534\n65534\n65534');
    const caps = await run("grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status");
    for (const line of caps.split('\n')) assert.match(line, /:\s+0{16}$/, line);
  });

  test('it runs in a cgroup of its own with the container memory and pids limits', async () => {
    const out = await run(
      'm=$(grep :memory: /proc/self/cgroup | cut -d: -f3); p=$(grep :pids: /proc/self/cgroup | cut -d: -f3); echo $m $p; ' +
        'cat /sys/fs/cgroup/memory$m/memory.limit_in_bytes /sys/fs/cgroup/pids$p/pids.max',
    );
    assert.match(out, new RegExp(`^/fxh-native-${process.pid}-\\d+-sh /fxh-native-${process.pid}-\\d+-sh\n${64 * 1024 * 1024}\n64$`));
  });

  test('warm processes are confined the same way, and their cgroups go with them', async () => {
    const noop = (await loadCatalog()).get('noop');
    const c = await v.warmClient(noop);
    await c.request(Buffer.from('x'), 10_000);
    const status = (await import('node:fs')).readFileSync(`/proc/${c.pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65534\s/m);
    const cg = (await import('node:fs')).readFileSync(`/proc/${c.pid}/cgroup`, 'utf8');
    const dir = /:memory:(\/fxh-native-[^\n]+)/.exec(cg)![1]!;
    assert.ok(existsSync(`/sys/fs/cgroup/memory${dir}`));
    await v.teardown();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!existsSync(`/sys/fs/cgroup/memory${dir}`), `${dir} left behind`);
    assert.deepEqual(readdirSync('/sys/fs/cgroup/memory').filter((d) => d.startsWith(`fxh-native-${process.pid}-`)), []);
  });
});
