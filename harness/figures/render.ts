// Render an Observable Plot figure in Node: a linkedom document stands in for the browser, the
// plot is wrapped in one standalone SVG (title, subtitle, legend and notes drawn as SVG text, so
// the PNG shows everything), and @resvg/resvg-js rasterizes it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as Plot from '@observablehq/plot';
import { Resvg } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';

export interface Figure {
  /** file base name: <name>.svg, <name>.png */
  name: string;
  title: string;
  subtitle?: string;
  /** lines under the plot: skipped/failed cells, method notes; never silently dropped */
  notes?: string[];
  /** Plot options (no document/title/caption: those are handled here) */
  plot: Plot.PlotOptions;
  /** draw a swatch legend of the plot's color scale (default true when it has one) */
  legend?: boolean;
  /** legend heading, e.g. "variant · mode" */
  legendLabel?: string;
}

const FONT = 'DejaVu Sans, sans-serif';
const WIDTH_DEFAULT = 720;
const PAD = 12;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Rough text width for DejaVu Sans: advances in em by character class (a flat 0.6 em ran legend labels with m and w into the next swatch). */
function textWidth(s: string, size: number): number {
  let em = 0;
  for (const ch of s) {
    if ('mwMW'.includes(ch)) em += 0.95;
    else if ('ijlI.,:;|!\' '.includes(ch)) em += 0.3;
    else if ('frt()[]'.includes(ch)) em += 0.42;
    else if (ch >= 'A' && ch <= 'Z') em += 0.72;
    else if ('+=<>~'.includes(ch)) em += 0.84;
    else em += 0.62;
  }
  return em * size;
}

function wrap(text: string, size: number, width: number): string[] {
  const maxChars = Math.max(10, Math.floor(width / (size * 0.6)));
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      if (line && (line + ' ' + word).length > maxChars) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    out.push(line);
  }
  return out;
}

interface ColorScale {
  domain?: unknown[];
  apply?: (v: unknown) => unknown;
}

/** The standalone SVG text of a figure. Pure: the same figure gives the same SVG. */
export function figureToSvg(fig: Figure): string {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const width = fig.plot.width ?? WIDTH_DEFAULT;
  const el = Plot.plot({
    ...fig.plot,
    width,
    style: { background: 'white', color: 'black', fontSize: '11px', fontFamily: FONT },
    document: document as unknown as Document,
  }) as unknown as (SVGSVGElement & { scale?: (name: string) => ColorScale | undefined });
  if (el.tagName.toLowerCase() !== 'svg') throw new Error(`figure ${fig.name}: Plot returned <${el.tagName}>, expected <svg>`);
  const plotHeight = Number(el.getAttribute('height'));
  // The <style> block uses :where(), which SVG rasterizers ignore or misread; attributes suffice.
  for (const s of Array.from(el.querySelectorAll('style'))) s.remove();

  const parts: string[] = [];
  let y = PAD;
  const text = (x: number, yy: number, s: string, attrs: string) =>
    parts.push(`<text x="${x}" y="${yy}" ${attrs}>${escapeXml(s)}</text>`);

  y += 16;
  text(PAD, y, fig.title, 'font-size="16" font-weight="bold"');
  if (fig.subtitle) {
    for (const line of wrap(fig.subtitle, 12, width - 2 * PAD)) {
      y += 17;
      text(PAD, y, line, 'font-size="12" fill="#444"');
    }
  }

  const color = el.scale?.('color');
  if ((fig.legend ?? true) && color?.domain && color.apply) {
    y += 10;
    let x = PAD;
    const rowH = 18;
    y += rowH - 4;
    if (fig.legendLabel) {
      text(x, y, `${fig.legendLabel}:`, 'font-size="12" font-weight="bold"');
      x += textWidth(fig.legendLabel + ':', 12) + 10;
    }
    for (const d of color.domain) {
      const label = String(d);
      const w = 14 + textWidth(label, 12) + 16;
      if (x + w > width - PAD && x > PAD) {
        x = PAD;
        y += rowH;
      }
      parts.push(`<rect x="${x}" y="${y - 10}" width="11" height="11" fill="${escapeXml(String(color.apply(d)))}"/>`);
      text(x + 15, y, label, 'font-size="12"');
      x += w;
    }
  }
  y += 8;

  el.setAttribute('x', '0');
  el.setAttribute('y', String(y));
  el.removeAttribute('xmlns');
  parts.push(el.outerHTML);
  y += plotHeight;

  for (const note of fig.notes ?? []) {
    for (const line of wrap(note, 11, width - 2 * PAD)) {
      y += 15;
      text(PAD, y, line, 'font-size="11" fill="#333"');
    }
  }
  y += PAD;
  const height = Math.ceil(y);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" fill="black">` +
    `<rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`
  );
}

export interface RenderOptions {
  /** PNG pixels per SVG pixel; default 2 (≈192 dpi) */
  scale?: number;
  /** replace existing files; default false (throws) */
  overwrite?: boolean;
}

/** PNG bytes of an SVG string: white background, system fonts (DejaVu Sans as sans-serif). */
export function svgToPng(svg: string, scale = 2): Buffer {
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    dpi: 96 * scale,
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/** Write <dir>/<name>.svg and <dir>/<name>.png; returns their paths. */
export function renderFigure(fig: Figure, dir: string, options: RenderOptions = {}): { svg: string; png: string } {
  const svgText = figureToSvg(fig);
  const png = svgToPng(svgText, options.scale ?? 2);
  const flag = options.overwrite ? 'w' : 'wx';
  const svgPath = path.join(dir, `${fig.name}.svg`);
  const pngPath = path.join(dir, `${fig.name}.png`);
  fs.writeFileSync(svgPath, svgText, { flag });
  fs.writeFileSync(pngPath, png, { flag });
  return { svg: svgPath, png: pngPath };
}
