// One latency figure per measurement path (direct, gateway), since a cell is measured both ways.
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { latencyFigure } from './cold-start.js';

export const PATH_TITLES: Record<string, string> = {
  gateway: 'through the gateway',
  direct: 'variant called directly',
};

export function latencyFiguresByPath(rows: readonly SummaryRow[], o: { name: string; title: string; metric: string; quantity: string; modes?: string[]; preface?: string }): Figure[] {
  const paths = [...new Set(rows.filter((r) => r.metric === o.metric && r.path).map((r) => r.path))].sort();
  return paths.map((p) =>
    latencyFigure(
      rows.filter((r) => (r.path === p || r.path === '') && !/(^|;)concurrency=/.test(r.params)),
      { name: `${o.name}-${p}`, title: `${o.title}: ${PATH_TITLES[p] ?? p}`, metrics: [o.metric], quantity: o.quantity, ...(o.modes ? { modes: o.modes } : {}), ...(o.preface ? { preface: o.preface } : {}) },
    ),
  );
}
