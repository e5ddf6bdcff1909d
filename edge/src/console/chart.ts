/**
 * Bar charts drawn on the server as SVG: no script, no library, readable without CSS. Each bar carries its number
 * as text (and a <title> for pointer users); the page also gives the same numbers as a table for screen readers.
 */
import { html } from "hono/html";

export interface Series {
  name: string;
  values: number[];
  /** A fill with at least 3:1 contrast against the white background. */
  color: string;
}

export interface BarChartSpec {
  id: string;
  title: string;
  categories: string[];
  series: Series[];
}

const BAR = 18;
const GAP = 10;
const LABEL_WIDTH = 150;
const PLOT_WIDTH = 420;
const VALUE_WIDTH = 90;
const LABEL_CHARS = 22;

/** Long model names are cut to fit beside the bars; each bar's <title> and the table give them in full. */
export const fitLabel = (label: string) => (label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label);

/** Horizontal grouped bars: one group per category, one bar per series; scales to the largest value. */
export function barChart(spec: BarChartSpec) {
  const max = Math.max(1, ...spec.series.flatMap((s) => s.values));
  const groupHeight = spec.series.length * BAR + GAP;
  const height = Math.max(1, spec.categories.length) * groupHeight + 30;
  const width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH;
  const legend = spec.series.map(
    (s, i) =>
      html`<rect x="${LABEL_WIDTH + i * 140}" y="4" width="12" height="12" fill="${s.color}"/><text x="${LABEL_WIDTH + i * 140 + 16}" y="15">${s.name}</text>`,
  );
  const groups = spec.categories.map((category, ci) => {
    const top = 30 + ci * groupHeight;
    const bars = spec.series.map((s, si) => {
      const value = s.values[ci] ?? 0;
      const y = top + si * BAR;
      const w = Math.round((value / max) * PLOT_WIDTH);
      return html`<g><title>${category}, ${s.name}: ${value}</title><rect x="${LABEL_WIDTH}" y="${y + 2}" width="${Math.max(w, 1)}" height="${BAR - 4}" fill="${s.color}"/><text class="value" x="${LABEL_WIDTH + w + 4}" y="${y + BAR - 5}">${value.toLocaleString("en-US")}</text></g>`;
    });
    return html`<text x="0" y="${top + (spec.series.length * BAR) / 2 + 4}">${fitLabel(category)}</text>${bars}`;
  });
  return html`<svg id="${spec.id}" class="chart" role="img" aria-labelledby="${spec.id}-title" viewBox="0 0 ${width} ${height}" width="100%" font-size="12" font-family="system-ui, sans-serif" fill="#1a1a1a"><title id="${spec.id}-title">${spec.title}</title>${legend}${groups}</svg>`;
}
