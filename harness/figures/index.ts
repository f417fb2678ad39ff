export { type Figure, type RenderOptions, figureToSvg, renderFigure, svgToPng, escapeXml } from './render.js';
export { coldStartFigure, latencyFigure, type LatencyFigureOptions, fmtUs } from './cold-start.js';
export { warmFigure, type WarmFigureOptions } from './warm.js';
export {
  throughputFigure,
  latencyVsConcurrencyFigure,
  throughputFigures,
  type ThroughputFigureOptions,
  type LatencyVsConcurrencyOptions,
} from './throughput.js';
export { memoryFigure, daemonFigure, budgetFigure, memlockFigure, densityFigures, mibTick } from './density.js';
export { parseParams, formatParams, paramNumber, type Params } from './params.js';
export { cellNotes, microsPerUnit, mibPerUnit, seriesLabel } from './common.js';
