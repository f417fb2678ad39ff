// Modes are declared by the variants that offer them (VariantPlugin.modes), not listed here: the core
// knows no mode by name. The registry declares every plug-in's modes when it loads them; the wire
// carries a mode by its id; figures take a mode's label, legend order and colour from its declaration.

export interface ModeDecl {
  /** on the wire and in the results' mode column: lower-case letters, digits and '-' */
  id: string;
  /** what legends show */
  label: string;
  /** legend order within a variant, coldest first; also the shade of the variant's hue (0 darkest) */
  rank: number;
  /** a colour of its own (CSS), instead of a shade of the variant's hue */
  colour?: string;
}

const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const declared = new Map<string, { decl: ModeDecl; owner: string }>();

/** Throws on an id the wire cannot carry or a declaration that is not one. */
export function checkModeDecl(d: ModeDecl): void {
  if (typeof d?.id !== 'string' || !ID.test(d.id)) throw new Error(`mode id ${JSON.stringify(d?.id)}: lower-case letters, digits and '-', at most 64`);
  if (typeof d.label !== 'string' || !d.label) throw new Error(`mode ${d.id}: no label`);
  if (!Number.isFinite(d.rank)) throw new Error(`mode ${d.id}: rank must be a number, got ${d.rank}`);
}

function same(a: ModeDecl, b: ModeDecl): boolean {
  return a.id === b.id && a.label === b.label && a.rank === b.rank && a.colour === b.colour;
}

/** Declares `owner`'s modes. A mode several owners share (cold, warm) must be declared alike by all. */
export function declareModes(owner: string, decls: readonly ModeDecl[]): void {
  for (const d of decls) {
    checkModeDecl(d);
    const had = declared.get(d.id);
    if (had && !same(had.decl, d)) {
      throw new Error(`mode ${d.id} is declared differently by ${had.owner} (${JSON.stringify(had.decl)}) and ${owner} (${JSON.stringify(d)})`);
    }
    if (!had) declared.set(d.id, { decl: { ...d }, owner });
  }
}

/** The declaration of a mode, by id or by label. */
export function modeDecl(idOrLabel: string): ModeDecl | undefined {
  const byId = declared.get(idOrLabel);
  if (byId) return byId.decl;
  for (const { decl } of declared.values()) if (decl.label === idOrLabel) return decl;
  return undefined;
}

/** Every declared mode, by rank then id. */
export function declaredModes(): ModeDecl[] {
  return [...declared.values()].map((x) => x.decl).sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
