// The gateway with real executor processes: binary and HTTP fronts, bad input, timeouts and restarts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadCatalog } from '../harness/functions/catalog.js';
import { verifyOutput } from '../harness/functions/verify.js';
import { Gateway } from '../harness/platform/gateway.js';
import { ProtocolClient } from '../harness/platform/client.js';
import { chainExpected, chainPayload } from '../harness/functions/workloads/chainstep.js';

const catalog = await loadCatalog();
let gw: Gateway;
let client: ProtocolClient;

before(async () => {
  gw = await Gateway.start({ binary: 'tcp:127.0.0.1:0', http: '127.0.0.1:0', memoryLimitMiB: 32 });
  client = await ProtocolClient.connect(gw.binaryEndpoint!);
});
after(async () => {
  client.close();
  await gw.close();
});

const empty = new Uint8Array(0);

test('binary protocol: warm and cold invocations return verified outputs', async () => {
  for (const name of ['noop', 'sha256', 'json']) {
    const fn = catalog.get(name);
    const input = fn.workload.input(5, 'small');
    for (const mode of ['warm', 'cold'] as const) {
      const r = await client.invoke({ variant: 'wasm', fn: name, mode, input, timeoutMs: 5000 });
      assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
      verifyOutput(fn, input, r.output);
      assert.ok(r.serverNs > 0);
    }
  }
});

test('binary protocol: many calls in flight on one connection all come back, matched', async () => {
  const fn = catalog.get('sha256');
  const inputs = Array.from({ length: 64 }, (_, i) => fn.workload.input(i + 1, 'small'));
  const replies = await Promise.all(inputs.map((input) => client.invoke({ variant: 'wasm', fn: 'sha256', mode: 'warm', input, timeoutMs: 5000 })));
  replies.forEach((r, i) => verifyOutput(fn, inputs[i]!, r.output));
});

test('binary protocol: 1 MiB calls and small ones in flight together all come back verified', async () => {
  const fn = catalog.get('chainstep');
  const inputs = [1 << 20, 64, 1 << 20, 70_000, 5].map((n, k) => Buffer.alloc(n).map((_, i) => (i + k * 3) & 0xff));
  const replies = await Promise.all(inputs.map((input) => client.invoke({ variant: 'wasm', fn: 'chainstep', mode: 'warm', input, timeoutMs: 5000 })));
  replies.forEach((r, k) => {
    assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
    verifyOutput(fn, inputs[k]!, r.output);
  });
});

test('a chain frame: the gateway calls the function N times, each output the next input, and times every stage', async () => {
  for (const [size, stages] of [[4096, 3], [1 << 20, 3], [64, 1]] as const) {
    const input = chainPayload(size, 9);
    const t0 = process.hrtime.bigint();
    const r = await client.chain({ variant: 'wasm', fn: 'chainstep', mode: 'warm', input, timeoutMs: 5000 }, stages);
    const e2e = Number(process.hrtime.bigint() - t0);
    assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
    assert.ok(Buffer.from(r.output).equals(Buffer.from(chainExpected(input, stages))), `${size} B, ${stages} stages: input + ${stages}`);
    assert.equal(r.stages.length, stages);
    for (const s of r.stages) assert.ok(s.serverNs > 0 && s.serverNs <= s.hopNs, JSON.stringify(s));
    assert.ok(r.stages.reduce((a, s) => a + s.hopNs, 0) <= e2e);
  }
});

test('a chain ends at the first stage that fails, and says which; a chain of 0 or 256 stages is refused before it is sent', async () => {
  const r = await client.chain({ variant: 'wasm', fn: 'trap', mode: 'warm', input: empty, timeoutMs: 5000 }, 3);
  assert.equal(r.status, 'function-error');
  assert.match(Buffer.from(r.output).toString(), /^stage 1 of 3: /);
  assert.deepEqual(r.stages, []);
  for (const n of [0, 256]) {
    await assert.rejects(client.chain({ variant: 'wasm', fn: 'chainstep', mode: 'warm', input: empty, timeoutMs: 5000 }, n), /a chain has 1 to 255 stages/);
  }
  assert.equal(client.inFlight, 0, 'nothing left pending');
  const ok = await client.chain({ variant: 'wasm', fn: 'chainstep', mode: 'warm', input: Buffer.from([1, 2]), timeoutMs: 5000 }, 2);
  assert.deepEqual([...ok.output], [3, 4]);
});

test('HTTP: POST /invoke returns the output; names are checked with the valid choices listed', async () => {
  const fn = catalog.get('sha256');
  const input = fn.workload.input(9, 'small');
  const ok = await fetch(`${gw.httpUrl}/invoke/wasm/sha256?mode=cold`, { method: 'POST', body: input });
  assert.equal(ok.status, 200);
  verifyOutput(fn, input, new Uint8Array(await ok.arrayBuffer()));

  const badVariant = await fetch(`${gw.httpUrl}/invoke/nosuch/noop`, { method: 'POST', body: '' });
  assert.equal(badVariant.status, 400);
  assert.match(await badVariant.text(), /unknown variant "nosuch"; valid variants: .*wasm/);

  const badFn = await fetch(`${gw.httpUrl}/invoke/wasm/nosuch`, { method: 'POST', body: '' });
  assert.equal(badFn.status, 400);
  assert.match(await badFn.text(), /nosuch.*noop/s);

  const badMode = await fetch(`${gw.httpUrl}/invoke/wasm/noop?mode=lukewarm`, { method: 'POST', body: '' });
  assert.equal(badMode.status, 400);
  // the variant's own declared modes
  assert.match(await badMode.text(), /^unknown mode "lukewarm" of variant wasm; valid modes: cold-compile, cold, cold-process, warm\n$/);

  const variants = (await (await fetch(`${gw.httpUrl}/variants`)).json()) as Record<string, { ok: boolean }>;
  assert.equal(variants.wasm?.ok, true);
});

test('a looping function is stopped by its timeout, and the gateway keeps serving', async () => {
  const t0 = Date.now();
  const r = await client.invoke({ variant: 'wasm', fn: 'loop', mode: 'warm', input: empty, timeoutMs: 300 });
  const took = Date.now() - t0;
  assert.equal(r.status, 'timeout');
  assert.match(Buffer.from(r.output).toString(), /did not finish within 300 ms; its executor was restarted/);
  assert.ok(took >= 300 && took < 3000, `took ${took} ms`);
  const after = await client.invoke({ variant: 'wasm', fn: 'noop', mode: 'warm', input: empty, timeoutMs: 5000 });
  assert.equal(after.status, 'ok', Buffer.from(after.output).toString());
  assert.equal(gw.restarts().wasm, 1);
});

test('trap, memory hog and crash are reported with their kind; the gateway goes on', async () => {
  const trap = await client.invoke({ variant: 'wasm', fn: 'trap', mode: 'cold', input: empty, timeoutMs: 5000 });
  assert.equal(trap.status, 'function-error');
  const hog = await client.invoke({ variant: 'wasm', fn: 'memhog', mode: 'warm', input: empty, timeoutMs: 10000 });
  assert.equal(hog.status, 'memory-limit', Buffer.from(hog.output).toString());
  const crash = await client.invoke({ variant: 'wasm', fn: 'crash', mode: 'cold', input: empty, timeoutMs: 5000 });
  assert.equal(crash.status, 'function-error');
  const ok = await client.invoke({ variant: 'wasm', fn: 'noop', mode: 'cold', input: empty, timeoutMs: 5000 });
  assert.equal(ok.status, 'ok');
});

test('a mode the variant lacks is refused as unavailable', async () => {
  const r = await client.invoke({ variant: 'native', fn: 'noop', mode: 'cold-compile', input: empty, timeoutMs: 5000 });
  assert.equal(r.status, 'unavailable');
  assert.match(Buffer.from(r.output).toString(), /no mode "cold-compile"/);
});

test('native variant through the gateway', async () => {
  const fn = catalog.get('sha256');
  const input = fn.workload.input(2, 'small');
  for (const mode of ['cold', 'warm'] as const) {
    const r = await client.invoke({ variant: 'native', fn: 'sha256', mode, input, timeoutMs: 5000 });
    assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
    verifyOutput(fn, input, r.output);
  }
});

test('a variant that polices its own timeouts answers "timeout" without an executor restart', async () => {
  const before = gw.restarts().native ?? 0;
  const t0 = Date.now();
  const r = await client.invoke({ variant: 'native', fn: 'loop', mode: 'warm', input: empty, timeoutMs: 300 });
  assert.equal(r.status, 'timeout', Buffer.from(r.output).toString());
  assert.doesNotMatch(Buffer.from(r.output).toString(), /executor was restarted/);
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(gw.restarts().native ?? 0, before);
  const ok = await client.invoke({ variant: 'native', fn: 'noop', mode: 'warm', input: empty, timeoutMs: 5000 });
  assert.equal(ok.status, 'ok');
});

test('executors announce who stops an overrunning function: the variant, or only the watchdog', async () => {
  assert.equal(await gw.executor('native')!.enforcesTimeouts(), true);
  assert.equal(await gw.executor('container')!.enforcesTimeouts(), true);
  assert.equal(await gw.executor('wasm')!.enforcesTimeouts(), false);
});
