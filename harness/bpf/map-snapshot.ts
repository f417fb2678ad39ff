// Snapshot and restore of a loaded eBPF object's state: its maps' entries. A BPF program has no other
// state between runs (registers and stack live for one run), so a freshly loaded copy of the same
// object with the entries written back answers as the original would. Read-only maps (.rodata,
// .kconfig) are fixed at load and skipped.
import type { BpfObject } from './libbpf.js';

export interface MapState {
  name: string;
  type: number;
  keySize: number;
  /** bytes per lookup (per-CPU maps: one slot per possible CPU) */
  valueBytes: number;
  maxEntries: number;
  entries: { key: Buffer; value: Buffer }[];
}

export interface BpfSnapshot {
  /** the object file the maps belong to, for messages */
  object: string;
  maps: MapState[];
}

const READ_ONLY = /\.(rodata|kconfig)$/;

export function snapshotMaps(obj: BpfObject, object: string): BpfSnapshot {
  const maps: MapState[] = [];
  for (const m of obj.maps()) {
    if (READ_ONLY.test(m.name)) continue;
    const entries = m.keys().flatMap((key) => {
      const value = m.lookup(key);
      return value ? [{ key, value }] : []; // deleted between get_next_key and lookup
    });
    maps.push({ name: m.name, type: m.type, keySize: m.keySize, valueBytes: m.lookupSize, maxEntries: m.maxEntries, entries });
  }
  return { object, maps };
}

/** Writes the snapshot's entries into `obj` (a freshly loaded copy of the same object); refuses a map whose shape differs. */
export function restoreMaps(obj: BpfObject, snap: BpfSnapshot): void {
  const have = new Map(obj.maps().filter((m) => !READ_ONLY.test(m.name)).map((m) => [m.name, m]));
  const missing = snap.maps.filter((s) => !have.has(s.name)).map((s) => s.name);
  const extra = [...have.keys()].filter((n) => !snap.maps.some((s) => s.name === n));
  if (missing.length || extra.length) {
    throw new Error(`eBPF snapshot of ${snap.object} does not fit this object: ${missing.length ? `maps ${missing.join(', ')} missing` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `maps ${extra.join(', ')} not in the snapshot` : ''}`);
  }
  for (const s of snap.maps) {
    const m = have.get(s.name)!;
    const shape = (x: { type: number; keySize: number; maxEntries: number }, v: number) => `type ${x.type}, key ${x.keySize} B, value ${v} B, ${x.maxEntries} entries`;
    if (m.type !== s.type || m.keySize !== s.keySize || m.lookupSize !== s.valueBytes || m.maxEntries !== s.maxEntries) {
      throw new Error(`eBPF snapshot of ${snap.object}: map ${s.name} is ${shape(s, s.valueBytes)} in the snapshot but ${shape(m, m.lookupSize)} here`);
    }
    for (const e of s.entries) m.update(e.key, e.value);
  }
}
