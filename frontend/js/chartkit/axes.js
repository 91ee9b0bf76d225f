// The axes of the loss charts, the single view's (chart.js) and the compare view's
// (compare/chart.js): x in the unit chosen (xaxis.js) over the range shown, y in losses; what
// the traces drawn span in y, how wide the drawing area is, and a mark across it at a step.

import { axis } from "../plots.js";
import { X_AXES } from "../xaxis.js";

// Log-scale ticks that read as losses (plotly's own are digits 2..9 between powers of ten).
export const LOSS_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100, 200, 500, 1000];

export const LOSS_MARGIN = { l: 58, r: 16, t: 10, b: 40 }; // a loss chart's, the y axis's title and ticks at its left

const LOG_STEPS = [0, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
const shortStep = (n) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));

/** The x axis in unit `mode` (a key of X_AXES) over `range`: the chart's own, never plotly's autorange. */
export function xAxis(mode, range) {
  const spec = X_AXES[mode] || X_AXES.step;
  // a log10 axis drawn linear (step 0 has a place on it), its ticks read as steps
  const ticks = spec.log ? { tickmode: "array", tickvals: LOG_STEPS.map((n) => Math.log10(n + 1)), ticktext: LOG_STEPS.map(shortStep) } : {};
  return axis({ type: "linear", title: { text: spec.title }, range, autorange: false, hoverformat: spec.format, ...ticks });
}

/** The y axis of losses, linear or log (then with `ticks` that read as losses), and `extra`. */
export function lossAxis(log, extra = {}, ticks = LOSS_TICKS) {
  return axis({
    title: { text: log ? "loss (log scale)" : "loss" },
    type: log ? "log" : "linear",
    ...(log ? { tickmode: "array", tickvals: ticks } : {}),
    ...extra,
  });
}

/** The width of a plot's drawing area, in pixels (as if the plot were 1000 wide before it is
 *  laid out), at least `least`. */
export function plotWidth(id, margin, least = 1) {
  return Math.max(least, (document.getElementById(id)?.clientWidth || 1000) - margin.l - margin.r);
}

/** The lowest and highest y of these traces (positive only on a log axis), or null. */
export function extent(traces, log) {
  let lo = Infinity, hi = -Infinity;
  for (const t of traces) {
    if (t.visible === false) continue;
    for (const y of t.y) {
      if (!Number.isFinite(y) || (log && y <= 0)) continue;
      if (y < lo) lo = y;
      if (y > hi) hi = y;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** A vertical line over the whole plot at x. */
export function vline(x, style) {
  return { type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, line: style };
}
