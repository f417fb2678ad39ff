// Where the remote fork's nodes run: each node a CPU of its own where there are enough (nodes stand for
// machines), the measuring process beside the parent; one CPU pins nothing. And CPU lists as taskset prints them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { placement } from '../harness/experiments/fork-remote.js';
import { expandCpus } from '../harness/experiment/affinity.js';

test('placement: the parent on the first CPU, children on the others in turn, the caller beside the parent', () => {
  assert.deepEqual(placement([0, 1], 2), { parent: '0', children: ['1', '1'], caller: '0' });
  assert.deepEqual(placement([2, 3, 5, 7], 4), { parent: '2', children: ['3', '5', '7', '3'], caller: '2' });
  assert.deepEqual(placement([0], 2), { children: [undefined, undefined] });
});

test('expandCpus: ranges and single CPUs, in order; a malformed list is an error', () => {
  assert.deepEqual(expandCpus('0-1'), [0, 1]);
  assert.deepEqual(expandCpus('0,2-4,7'), [0, 2, 3, 4, 7]);
  assert.deepEqual(expandCpus(' 3 '), [3]);
  assert.throws(() => expandCpus('0-a'), /bad CPU list "0-a"/);
});
