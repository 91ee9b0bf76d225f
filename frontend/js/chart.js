// The loss chart (plotly.js, loaded as a classic script: window.Plotly). Drawn from the state
// with Plotly.react, which render.js calls a few times a second at most.

import * as fmt from "./format.js";
import { state } from "./state.js";

const COLORS = {
  raw: "rgba(122, 162, 255, 0.28)",
  smooth: "#7aa2ff",
  train: "#ffb454",
  dev: "#4fd1a5",
  change: "rgba(216, 222, 234, 0.45)",
  grid: "rgba(138, 148, 168, 0.15)",
  text: "#c9d1e0",
};
const MAX_CHANGE_MARKS = 200; // vertical lines drawn
const MAX_CHANGE_LABELS = 40; // of which labelled (the latest)

// Log-scale ticks that read as losses (plotly's own are digits 2..9 between powers of ten).
const LOG_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100, 200, 500, 1000];

let revision = 0;

function evalTrace(name, key, color) {
  const x = [], y = [];
  for (const e of state.evals) {
    const v = e[key];
    if (v === null || v === undefined || !Number.isFinite(v)) continue; // a diverged evaluation
    x.push(e.step);
    y.push(v);
  }
  return {
    type: "scatter",
    mode: "lines+markers",
    name,
    x,
    y,
    line: { color, width: 1.5 },
    marker: { color, size: 6 },
    hovertemplate: `${name}<br>step %{x:,}<br>%{y:.4f}<extra></extra>`,
  };
}

function traces() {
  const raw = state.losses.points();
  const smooth = state.losses.smoothed();
  return [
    {
      type: "scatter",
      mode: "lines",
      name: "minibatch loss",
      x: raw.x,
      y: raw.y,
      line: { color: COLORS.raw, width: 1 },
      hovertemplate: "minibatch<br>step %{x:,}<br>%{y:.4f}<extra></extra>",
    },
    {
      type: "scatter",
      mode: "lines",
      name: `smoothed (${state.view.smoothing.toFixed(3)})`,
      x: smooth.x,
      y: smooth.y,
      line: { color: COLORS.smooth, width: 2 },
      hovertemplate: "smoothed<br>step %{x:,}<br>%{y:.4f}<extra></extra>",
    },
    evalTrace("train loss", "train_loss", COLORS.train),
    evalTrace("dev loss", "dev_loss", COLORS.dev),
  ];
}

function changeMarks() {
  const changes = state.changes.slice(-MAX_CHANGE_MARKS);
  const shapes = changes.map((c) => ({
    type: "line",
    xref: "x",
    yref: "paper",
    x0: c.step,
    x1: c.step,
    y0: 0,
    y1: 1,
    line: { color: COLORS.change, width: 1, dash: "dot" },
  }));
  const annotations = changes.slice(-MAX_CHANGE_LABELS).map((c) => ({
    xref: "x",
    yref: "paper",
    x: c.step,
    y: 1,
    xanchor: "left",
    yanchor: "top",
    textangle: -90,
    xshift: 2,
    showarrow: false,
    text: c.label,
    hovertext: `step ${fmt.int(c.step)}: ${c.label}`,
    font: { size: 11, color: COLORS.text },
  }));
  return { shapes, annotations };
}

const MIN_X_RANGE = 1000; // steps shown at least, so a young run is not stretched over 0..1

function layout() {
  const runId = state.run ? state.run.id : "none";
  const log = state.view.logScale;
  const young = state.step < MIN_X_RANGE;
  return {
    autosize: true,
    datarevision: ++revision,
    uirevision: runId, // keep the user's zoom across redraws of one run
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: COLORS.text, family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
    margin: { l: 58, r: 16, t: 36, b: 44 },
    hovermode: "closest",
    legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" },
    xaxis: {
      title: { text: "step" },
      gridcolor: COLORS.grid,
      zeroline: false,
      rangemode: "tozero",
      ...(young ? { range: [-0.02 * MIN_X_RANGE, MIN_X_RANGE], autorange: false } : { autorange: true }),
      hoverformat: ",d",
    },
    yaxis: {
      title: { text: log ? "loss (log scale)" : "loss" },
      type: log ? "log" : "linear",
      uirevision: `${runId}-${log}`, // switching scales resets the y zoom
      ...(log ? { tickmode: "array", tickvals: LOG_TICKS } : {}),
      gridcolor: COLORS.grid,
      zeroline: false,
    },
    ...changeMarks(),
  };
}

const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
};

export function drawChart() {
  if (!window.Plotly) return; // main.js told the user
  const el = document.getElementById("chart");
  window.Plotly.react(el, traces(), layout(), CONFIG);
}
