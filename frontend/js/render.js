// Redraws, at most once per animation frame, never once per message: the figures and controls
// whenever something changed, the chart at most every CHART_INTERVAL_MS (Plotly.react is the
// expensive part). Hidden tabs get no animation frames, so they do not draw at all.

const CHART_INTERVAL_MS = 150; // ~6-7 chart redraws a second

const renderers = { ui: () => {}, chart: () => {} };
let uiDirty = false;
let chartDirty = false;
let frame = 0;
let lastChart = -Infinity;

export function setRenderers({ ui, chart }) {
  renderers.ui = ui;
  renderers.chart = chart;
}

/** Ask for a redraw: of the figures and controls, and of the chart if `chart`. */
export function invalidate({ chart = false } = {}) {
  uiDirty = true;
  chartDirty ||= chart;
  if (!frame) frame = requestAnimationFrame(draw);
}

function draw(now) {
  frame = 0;
  if (uiDirty) {
    uiDirty = false;
    renderers.ui();
  }
  if (chartDirty) {
    if (now - lastChart >= CHART_INTERVAL_MS) {
      chartDirty = false;
      lastChart = now;
      renderers.chart();
    } else {
      frame = requestAnimationFrame(draw); // try again on a later frame
    }
  }
}
