// RDMA on this host: with no RDMA device every entry point (devices, listen, connect, the rdma: link)
// says so clearly, and nothing is left listening; perftest's tables parse, and what is not one is refused.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connectLink, listenLinks } from '../harness/platform/link.js';
import { parsePerftest } from '../harness/rdma/perftest.js';
import { VerbsListener, connectVerbs, rdmaDevices } from '../harness/rdma/verbs.js';

const devices = rdmaDevices();
const noDevice = 'devices' in devices ? `this machine has RDMA devices (${devices.devices.join(', ')}): the no-device path cannot be seen here` : false;
const NO_DEVICE = /no RDMA device on this machine \(ibv_get_device_list: .*\)/;

test('no RDMA device: devices, listen and connect each say so, naming what was found', { skip: noDevice }, async () => {
  assert.ok('error' in devices);
  assert.match(devices.error, NO_DEVICE);
  await assert.rejects(VerbsListener.listen('127.0.0.1', 0, () => {}), (e: Error) => /listening on rdma:127\.0\.0\.1:0: /.test(e.message) && NO_DEVICE.test(e.message));
  await assert.rejects(connectVerbs('127.0.0.1', 7, () => Buffer.alloc(0)), (e: Error) => /connecting to rdma:127\.0\.0\.1:7: /.test(e.message) && NO_DEVICE.test(e.message));
});

test('no RDMA device: the rdma: link transport refuses to listen or connect with the same reason, and leaves no port open', { skip: noDevice }, async () => {
  // a port that was free: after the refused listen it must still be free
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  await assert.rejects(listenLinks(`rdma:127.0.0.1:${port}`, () => {}), NO_DEVICE);
  await assert.rejects(connectLink(`rdma:127.0.0.1:${port}`), NO_DEVICE);
  const again = net.createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((r) => again.close(() => r()));
});

test('a bad rdma address is refused before anything is opened', async () => {
  await assert.rejects(connectLink('rdma:10.0.0.1'), /bad rdma address "10\.0\.0\.1": want <IPv4 of an RDMA device>:port/);
  await assert.rejects(listenLinks('rdma:host:99999', () => {}), /bad rdma address "host:99999"/);
});

const LAT = `
---------------------------------------------------------------------------------------
 #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] 
 64      1000          46.16          21754.24      62.77    	       984.32      	2787.34		14224.98 		21754.24
---------------------------------------------------------------------------------------
`;
const BW = `
 #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]
 4096       220              12.16              12.01		   0.003074
`;

test("perftest's latency and bandwidth tables parse; -nan is NaN; output without a table is refused, quoting it", () => {
  assert.deepEqual(parsePerftest(LAT), { kind: 'latency', bytes: 64, iterations: 1000, tMinUs: 46.16, tMaxUs: 21754.24, tTypicalUs: 62.77, tAvgUs: 984.32, tStdevUs: 2787.34, p99Us: 14224.98, p999Us: 21754.24 });
  assert.deepEqual(parsePerftest(BW), { kind: 'bandwidth', bytes: 4096, iterations: 220, bwPeakMBps: 12.16, bwAvgMBps: 12.01, msgRateMpps: 0.003074 });
  const nan = parsePerftest(LAT.replace('2787.34', '-nan'));
  assert.ok(nan.kind === 'latency' && Number.isNaN(nan.tStdevUs) && nan.tTypicalUs === 62.77);
  assert.throws(() => parsePerftest(LAT.replace('62.77', '-nan')), /a non-number in column 5: "64 +1000 +46\.16/);
  assert.throws(() => parsePerftest(" Couldn't connect to 10.77.0.2:18515\n"), /no result table in perftest's output: Couldn't connect to 10\.77\.0\.2:18515/);
  assert.throws(() => parsePerftest(LAT.replace(/14224\.98 \t\t21754\.24/, '')), /a latency row of 7 columns, want 9/);
});
