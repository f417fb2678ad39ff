// Warm latency per variant × function: same encoding as the cold start figure.
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { latencyFigure } from './cold-start.js';

export interface WarmFigureOptions {
  name?: string;
  /** default 'latency' */
  metric?: string;
  /** default ['warm']; pass [] or undefined-like to keep every mode */
  modes?: string[];
}

/** Warm invocation latency from summary rows (metric `latency`, mode `warm`, by default). */
export function warmFigure(rows: readonly SummaryRow[], options: WarmFigureOptions = {}): Figure {
  const modes = options.modes ?? ['warm'];
  return latencyFigure(
    // Load-test rows (with a concurrency) belong to the throughput figures.
    rows.filter((r) => !/(^|;)concurrency=/.test(r.params)),
    {
      name: options.name ?? 'warm',
      title: 'Warm invocation latency per function',
      metrics: [options.metric ?? 'latency'],
      ...(modes.length ? { modes } : {}),
      quantity: 'warm latency',
    },
  );
}
