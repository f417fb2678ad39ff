// The `params` column: k=v pairs joined by ';' (e.g. "concurrency=4;scale=small"), "" if none.

export type Params = Record<string, string>;

/** "a=1;b=x" → {a: "1", b: "x"}. Empty segments are ignored; a segment without '=' maps to "". */
export function parseParams(text: string): Params {
  const out: Params = {};
  for (const seg of text.split(';')) {
    const s = seg.trim();
    if (!s) continue;
    const eq = s.indexOf('=');
    if (eq < 0) out[s] = '';
    else out[s.slice(0, eq).trim()] = s.slice(eq + 1).trim();
  }
  return out;
}

/** {b: 1, a: "x"} → "a=x;b=1": keys sorted so equal params always give equal strings. */
export function formatParams(params: Record<string, string | number | boolean>): string {
  for (const [k, v] of Object.entries(params)) {
    if (/[;=]/.test(k) || /[;=]/.test(String(v))) throw new Error(`params may not contain ';' or '=': ${k}=${v}`);
  }
  return Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join(';');
}

/** A numeric parameter, or undefined when absent or not a number. */
export function paramNumber(text: string, key: string): number | undefined {
  const v = parseParams(text)[key];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}
