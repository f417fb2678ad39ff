// The two modes most variants share, declared once so that every variant declares them alike
// (platform/modes.ts refuses one id declared two ways). Not a plug-in (no default export).
import type { ModeDecl } from '../platform/modes.js';

/** a new instance for every call */
export const COLD: ModeDecl = { id: 'cold', label: 'cold', rank: 2 };
/** one live instance serves call after call */
export const WARM: ModeDecl = { id: 'warm', label: 'warm', rank: 3 };

export const COLD_WARM: readonly ModeDecl[] = [COLD, WARM];
