// What every plot shares: colours, the base layout (dark, transparent), the config, and a
// Plotly.react that draws a first picture while plotly.js is still to run (js/vendor.js), and
// only that picture when it did not load (main.js told the user).

import { drawPreview } from "./preview.js";
import { plotlyReady } from "./vendor.js";

export const COLORS = {
  raw: "rgba(122, 162, 255, 0.28)",
  smooth: "#7aa2ff",
  train: "#ffb454",
  dev: "#4fd1a5",
  lr: "#c792ea",
  noise: "#89ddff", // a figure, not a warning: no salmon
  change: "rgba(216, 222, 234, 0.45)",
  grid: "rgba(138, 148, 168, 0.15)",
  text: "#c9d1e0",
  muted: "#8a94a8",
  mark: "#ffcb6b",
};

export const FONT = { color: COLORS.text, family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };

export const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
};

/** A small plot's config: no mode bar. */
export const SMALL_CONFIG = { responsive: true, displaylogo: false, displayModeBar: false };

export function baseLayout(extra = {}) {
  return {
    autosize: true,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: FONT,
    hovermode: "closest",
    showlegend: false,
    ...extra,
  };
}

export function axis(extra = {}) {
  return { gridcolor: COLORS.grid, zeroline: false, ...extra };
}

const waiting = new Map(); // element -> {args, done}: the last draw asked before plotly.js ran
let failed = false;

/**
 * Plotly.react(el, data, layout, config), resolving when drawn. Before plotly.js has run, the
 * plot's lines are drawn on a canvas at once (js/preview.js) and plotly draws the last data it
 * was given when it comes. When plotly.js did not load, the canvas is all there is: null.
 */
export function react(id, data, layout, config = CONFIG) {
  const el = document.getElementById(id);
  if (window.Plotly) return draw(el, data, layout, config);
  drawPreview(el, data, layout);
  if (failed) return null;
  return new Promise((resolve) => {
    const done = waiting.get(el)?.done || [];
    waiting.set(el, { args: [data, layout, config], done: [...done, resolve] });
  });
}

function draw(el, data, layout, config) {
  el.querySelector(":scope > canvas.plot-preview")?.remove();
  const drawn = window.Plotly.react(el, data, layout, config);
  drawn.then(() => untab(el));
  return drawn;
}

plotlyReady.then((Plotly) => {
  failed = !Plotly;
  if (Plotly) {
    for (const [el, { args, done }] of waiting) {
      const drawn = draw(el, ...args);
      for (const resolve of done) resolve(drawn);
    }
  }
  waiting.clear();
});

/** The mode bar's buttons (zoom, pan, reset...) are for the mouse and show on hover: out of the
 *  tab order, so Tab goes from control to control, not through a dozen hidden buttons. */
function untab(el) {
  for (const b of el.querySelectorAll(".modebar-btn:not([tabindex])")) b.tabIndex = -1;
}

/**
 * Ticks for a log axis over [lo, hi] (data units) that read well in a small plot: 1-2-5 per
 * decade over a short range, powers of ten over a long one. Returns {tickvals, ticktext}.
 */
export function logTicks(lo, hi, format = (v) => String(v)) {
  if (!(lo > 0) || !(hi >= lo)) return {};
  const d0 = Math.floor(Math.log10(lo)), d1 = Math.ceil(Math.log10(hi));
  const decades = Math.log10(hi / lo);
  const steps = decades < 1 ? [1, 1.5, 2, 3, 5, 7] : decades <= 2.2 ? [1, 2, 5] : decades <= 4 ? [1, 3] : [1];
  const tickvals = [];
  for (let d = d0; d <= d1; d++) {
    for (const m of steps) {
      const v = Number((m * 10 ** d).toPrecision(3));
      if (v >= lo * 0.999 && v <= hi * 1.001) tickvals.push(v);
    }
  }
  return { tickmode: "array", tickvals, ticktext: tickvals.map(format) };
}

/** A log range [log10 lo, log10 hi] around finite positive values, padded by `pad` decades. */
export function logRange(values, pad = 0.15, minDecades = 0.6) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v === null || !(v > 0) || !Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!Number.isFinite(lo)) return null;
  let a = Math.log10(lo), b = Math.log10(hi);
  if (b - a < minDecades) {
    const mid = (a + b) / 2;
    [a, b] = [mid - minDecades / 2, mid + minDecades / 2];
  }
  return [a - pad, b + pad];
}

/** Axis settings for a log axis over the given range (log10 units). */
export function logAxis(range, format) {
  if (!range) return { type: "log" };
  return { type: "log", range, autorange: false, ...logTicks(10 ** range[0], 10 ** range[1], format) };
}
