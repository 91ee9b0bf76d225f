// Redraws, at most once per animation frame, never once per message: the figures and controls
// whenever something changed, and each plot only when its own data changed, at most every
// INTERVALS_MS[name] (Plotly.react is the expensive part). Hidden tabs get no animation frames,
// so they do not draw at all.

// Each Plotly.react costs tens of milliseconds however few its points (axes, text, DOM), so
// how often each plot may redraw is what keeps the page responsive while a run streams.
const INTERVALS_MS = {
  loss: 200, // 5 redraws a second: the live curve
  lr: 400, // follows the loss chart's x range
  lrfind: 150, // only while a sweep streams
  embedding: 1000, // each redraw animates the points for ~350 ms
  noise: 2000, // a point per evaluation
  next: 0, // answers to typing: at once
};

let uiRenderer = () => {};
const chartRenderers = {};
let uiDirty = false;
const dirty = new Set();
const lastDrawn = {};
let frame = 0;

/** ui(): figures and controls; charts: {name: draw()} */
export function setRenderers({ ui, charts }) {
  uiRenderer = ui;
  Object.assign(chartRenderers, charts);
}

/**
 * Ask for a redraw: of the figures and controls, and of the named plots. `chart: true` names
 * the step-based pair: the loss chart and the learning-rate plot. `urgent`: the user acted (a
 * zoom, another x axis): those plots redraw on the next frame, whatever their interval.
 */
export function invalidate({ chart = false, charts = [], urgent = false } = {}) {
  uiDirty = true;
  const names = chart ? ["loss", "lr", ...charts] : charts;
  for (const name of names) {
    dirty.add(name);
    if (urgent) lastDrawn[name] = -Infinity;
  }
  if (!frame) frame = requestAnimationFrame(draw);
}

function draw(now) {
  frame = 0;
  if (uiDirty) {
    uiDirty = false;
    uiRenderer();
  }
  for (const name of [...dirty]) {
    const interval = INTERVALS_MS[name] ?? 150;
    if (now - (lastDrawn[name] ?? -Infinity) < interval) continue; // a later frame
    dirty.delete(name);
    lastDrawn[name] = now;
    const render = chartRenderers[name];
    if (render) render();
  }
  if (dirty.size && !frame) frame = requestAnimationFrame(draw);
}
