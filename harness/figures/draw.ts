// Renders a list of figures into a folder; returns every file written.
import { renderFigure, type Figure } from './render.js';

export async function drawFigures(figures: readonly Figure[], dir: string): Promise<string[]> {
  return figures.flatMap((f) => {
    const { svg, png } = renderFigure(f, dir);
    return [svg, png];
  });
}
