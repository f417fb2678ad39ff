// The node kinds, by name. A new kind is a file and a line here.
import type { NodeKind } from './kind.js';
import { localKind } from './local.js';
import { netnsKind } from './netns.js';
import { sshKind } from './ssh.js';
import { guestKind } from '../../rdma/guest-kind.js';

const KINDS = new Map<string, NodeKind>([
  [localKind.kind, localKind],
  [netnsKind.kind, netnsKind],
  [sshKind.kind, sshKind],
  [guestKind.kind, guestKind],
]);

export function nodeKind(kind: string): NodeKind {
  const k = KINDS.get(kind);
  if (!k) throw new Error(`unknown node kind "${kind}"; valid kinds: ${[...KINDS.keys()].join(', ')}`);
  return k;
}

export function nodeKinds(): string[] {
  return [...KINDS.keys()];
}
