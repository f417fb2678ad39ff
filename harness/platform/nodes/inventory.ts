// The inventory: the nodes a run may use, each named, with its kind and the kind's fields. Given as
// a JSON file or inline JSON (--nodes), either a list or {"nodes": [...]}, and recorded in env.json.
//   [{"name": "a", "kind": "local"}, {"name": "b", "kind": "netns"},
//    {"name": "c", "kind": "ssh", "host": "10.0.0.7", "user": "fxh", "projectDir": "/srv/fxh"}]
import fs from 'node:fs';
import { nodeKind, nodeKinds } from './kinds.js';
import type { AgentLaunch, LaunchedNode, NodeSpec } from './kind.js';

/** Parses and checks an inventory; `source` is a file path or JSON text (starting with [ or {). */
export function parseInventory(source: string): NodeSpec[] {
  const text = source.trimStart().startsWith('[') || source.trimStart().startsWith('{') ? source : readInventoryFile(source);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`the node inventory is not JSON: ${(e as Error).message}`);
  }
  const list = Array.isArray(json) ? json : (json as { nodes?: unknown })?.nodes;
  if (!Array.isArray(list) || !list.length) throw new Error('the node inventory is a non-empty list of nodes, or {"nodes": [...]}');
  const names = new Set<string>();
  return list.map((n, i) => {
    const where = `node ${i + 1} of the inventory`;
    if (typeof n !== 'object' || n === null) throw new Error(`${where} is not an object`);
    const spec = n as NodeSpec;
    if (typeof spec.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(spec.name)) throw new Error(`${where}: "name" is 1-63 letters, digits, _ . - (got ${JSON.stringify(spec.name)})`);
    if (names.has(spec.name)) throw new Error(`two nodes of the inventory are named "${spec.name}"`);
    names.add(spec.name);
    if (typeof spec.kind !== 'string' || !nodeKinds().includes(spec.kind)) throw new Error(`node ${spec.name}: "kind" is one of ${nodeKinds().join(', ')} (got ${JSON.stringify(spec.kind)})`);
    const why = nodeKind(spec.kind).validate(spec);
    if (why) throw new Error(`node ${spec.name} (${spec.kind}): ${why}; its fields: ${nodeKind(spec.kind).fields}`);
    return spec;
  });
}

function readInventoryFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the node inventory ${file}: ${(e as Error).message}`);
  }
}

/** The inventory as env.json records it: the fields, without key file contents (only paths are in it). */
export function inventoryRecord(nodes: readonly NodeSpec[]): NodeSpec[] {
  return nodes.map((n) => ({ ...n }));
}

/** Starts an agent on the node. */
export function launchNode(spec: NodeSpec, what: AgentLaunch): Promise<LaunchedNode> {
  const kind = nodeKind(spec.kind);
  const why = kind.validate(spec);
  if (why) return Promise.reject(new Error(`node ${spec.name} (${spec.kind}): ${why}`));
  return kind.launch(spec, what);
}
