// JSON workload: the generator writes JSON text with irregular whitespace and escapes,
// restricted to what src/json.c reproduces exactly (integers |n| < 2^31, unique keys that
// never look like array indices). The oracle is JS itself.
import type { Scale, Workload } from '../types.js';
import { Prng, ascii, utf8 } from './prng.js';

export const JSON_SIZES: Record<Scale, number> = { small: 2048, large: 1 << 20 };

const KEYS = [
  'id', 'name', 'tags', 'value', 'enabled', 'items', 'meta', 'owner', 'score', 'path',
  'note', 'kind', 'ref', 'delta', 'extra', 'created_at', 'labels', 'weight',
];
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'wasm', 'ebpf', 'faas', 'node', 'edge', 'zeta', 'x', ''];
// characters that exercise escaping (raw content; the writer chooses the escape form)
const SPECIAL = ['"', '\\', '\n', '\t', '\r', '/', '\u0000', '\u0001', '\u001f', '\u007f', '\b', '\f', 'é', '😀'];

function hex4(code: number, upper: boolean): string {
  const h = code.toString(16).padStart(4, '0');
  return '\\u' + (upper ? h.toUpperCase() : h);
}

class JsonWriter {
  parts: string[] = [];
  length = 0;
  constructor(private readonly r: Prng) {}

  put(s: string): void {
    this.parts.push(s);
    this.length += s.length;
  }

  ws(): void {
    const k = this.r.int(10);
    if (k < 5) return;
    this.put([' ', '  ', '\n  ', '\t', '\r\n', ' \n'][k - 5] ?? ' ');
  }

  str(raw: string): void {
    const r = this.r;
    let s = '"';
    for (const ch of raw) {
      const code = ch.codePointAt(0)!;
      if (ch === '"') s += '\\"';
      else if (ch === '\\') s += '\\\\';
      else if (ch === '\n') s += r.chance(0.5) ? '\\n' : hex4(10, r.chance(0.5));
      else if (ch === '\t') s += r.chance(0.5) ? '\\t' : hex4(9, false);
      else if (ch === '\r') s += '\\r';
      else if (ch === '\b') s += '\\b';
      else if (ch === '\f') s += '\\f';
      else if (ch === '/') s += r.chance(0.5) ? '\\/' : '/';
      else if (code < 0x20) s += hex4(code, r.chance(0.5));
      else if (code > 0xffff) {
        const v = code - 0x10000;
        s += hex4(0xd800 + (v >> 10), r.chance(0.5)) + hex4(0xdc00 + (v & 0x3ff), false);
      } else if (code > 0x7e) s += hex4(code, r.chance(0.5)); // keep the input ASCII
      else if (r.chance(0.02)) s += hex4(code, false); // plain letters as \u00XX now and then
      else s += ch;
    }
    this.put(s + '"');
  }

  rawString(): string {
    const r = this.r;
    const parts: string[] = [];
    const n = r.range(0, 4);
    for (let i = 0; i < n; i++) {
      parts.push(r.chance(0.15) ? r.pick(SPECIAL) : r.pick(WORDS));
    }
    return parts.join(r.chance(0.7) ? ' ' : '-');
  }

  number(): void {
    const r = this.r;
    const k = r.int(10);
    if (k === 0) this.put('0');
    else if (k === 1) this.put(r.chance(0.5) ? '-0' : String(-r.range(1, 9)));
    else if (k < 6) this.put(String(r.int(1000)));
    else if (k < 8) this.put(String(r.u32() | 0)); // full int32 range
    else this.put(String(r.u32()));
  }

  value(depth: number): void {
    const r = this.r;
    const k = r.int(100);
    if (depth < 5 && k < 22) this.object(depth + 1, r.range(0, 6));
    else if (depth < 5 && k < 40) this.array(depth + 1);
    else if (k < 65) this.str(this.rawString());
    else if (k < 88) this.number();
    else this.put(r.pick(['true', 'false', 'null']));
  }

  key(used: Set<string>): string {
    const r = this.r;
    for (;;) {
      let key = r.pick(KEYS);
      if (r.chance(0.3)) key += '_' + r.int(100);
      if (r.chance(0.05)) key += r.pick(['"q"', '\\', '\n', '/']);
      if (!used.has(key)) {
        used.add(key);
        return key;
      }
    }
  }

  object(depth: number, members: number): void {
    const used = new Set<string>();
    this.put('{');
    this.ws();
    for (let i = 0; i < members; i++) {
      if (i) {
        this.put(',');
        this.ws();
      }
      this.str(this.key(used));
      this.ws();
      this.put(':');
      this.ws();
      this.value(depth);
      this.ws();
    }
    this.put('}');
  }

  array(depth: number): void {
    const n = this.r.range(0, 6);
    this.put('[');
    this.ws();
    for (let i = 0; i < n; i++) {
      if (i) {
        this.put(',');
        this.ws();
      }
      this.value(depth);
      this.ws();
    }
    this.put(']');
  }
}

/** {"schema":..,"records":[{...},...],"count":N} grown until `target` characters */
export function generateJson(seed: number, target: number): string {
  const r = new Prng(seed ^ 0x15011);
  const w = new JsonWriter(r);
  w.put('{\n  "schema": "fx-json-1",\n  "records": [');
  let count = 0;
  while (w.length < target - 40) {
    if (count) w.put(',');
    w.ws();
    w.object(1, r.range(2, 7));
    count++;
  }
  w.put(`\n  ],\n  "count": ${count}\n}\n`);
  return w.parts.join('');
}

export const json: Workload = {
  name: 'json',
  summary: 'parse + minified re-serialisation of JSON (~2 KB small, ~1 MB large)',
  input(seed: number, scale: Scale): Uint8Array {
    return ascii(generateJson(seed, JSON_SIZES[scale]));
  },
  expected(input: Uint8Array): Uint8Array {
    return ascii(JSON.stringify(JSON.parse(utf8(input))) + '\n');
  },
};
