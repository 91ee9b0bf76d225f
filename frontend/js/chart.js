// The step-based charts (plotly.js, loaded as a classic script: window.Plotly): the loss chart
// and, under it, the effective learning rate per step. Both share the x axis (step, examples
// seen or training time: xaxis.js) and its range, zoom included. Drawn from the state with
// Plotly.react, which render.js calls a few times a second at most, and only when it changed.

import { examplesAt } from "./events.js";
import * as fmt from "./format.js";
import { axis, baseLayout, COLORS, logAxis, logRange, react } from "./plots.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";
import { X_AXES } from "./xaxis.js";

const MAX_CHANGE_MARKS = 200; // vertical lines drawn
const MAX_CHANGE_LABELS = 40; // of which labelled (the latest)
const MIN_X_RANGE = 1000; // steps shown at least, so a young run is not stretched over 0..1

// Log-scale ticks that read as losses (plotly's own are digits 2..9 between powers of ten).
const LOG_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100, 200, 500, 1000];

let revision = 0;

/** step -> x for the chosen axis. */
function xMapper() {
  const mode = state.view.xAxis;
  if (mode === "examples" && state.initialHparams) return examplesAt();
  if (mode === "time") return (step) => state.times.at(step);
  return (step) => step;
}

/** The x range both charts show: the user's zoom, else the whole run (at least MIN_X_RANGE steps). */
function xRange(X) {
  if (state.view.xRange) return state.view.xRange;
  const last = Math.max(state.step, 1);
  const lo = X(0);
  let hi = X(last);
  if (state.step < MIN_X_RANGE) {
    if (state.view.xAxis === "time") {
      hi = state.step > 0 ? (hi * MIN_X_RANGE) / state.step : 1;
    } else {
      hi = X(MIN_X_RANGE);
    }
  }
  if (!(hi > lo)) hi = lo + 1;
  const pad = 0.015 * (hi - lo);
  return [lo - pad, hi + pad];
}

function xAxisLayout(X) {
  const spec = X_AXES[state.view.xAxis] || X_AXES.step;
  return axis({ type: "linear", title: { text: spec.title }, range: xRange(X), autorange: false, hoverformat: spec.format });
}

const hoverX = () => (X_AXES[state.view.xAxis] || X_AXES.step).hover;

/** On the step axis x is the step; on the others, customdata holds each point's step. */
function stepOf() {
  return state.view.xAxis === "step" ? "%{x:,.0f}" : "%{customdata:,.0f}";
}

function withSteps(trace, steps) {
  if (state.view.xAxis !== "step") trace.customdata = steps;
  return trace;
}

function lineTrace(name, points, X, color, width) {
  const where = state.view.xAxis === "step" ? `step ${stepOf()}` : `step ${stepOf()} · ${hoverX()}`;
  return withSteps(
    {
      type: "scatter",
      mode: "lines",
      name,
      x: points.x.map(X),
      y: points.y,
      line: { color, width },
      hovertemplate: `${name.split(" (")[0]}<br>${where}<br>%{y:.4f}<extra></extra>`,
    },
    points.x,
  );
}

/** A step function's points: of each run of equal values, its first and last (what "hv" draws). */
function compressRuns({ x, y }) {
  const cx = [], cy = [];
  for (let i = 0; i < x.length; i++) {
    const same = i > 0 && i < x.length - 1 && y[i] === y[i - 1] && y[i] === y[i + 1];
    if (!same) {
      cx.push(x[i]);
      cy.push(y[i]);
    }
  }
  return { x: cx, y: cy };
}

function evalTrace(name, key, color, X) {
  const x = [], y = [], steps = [];
  for (const e of state.evals) {
    const v = e[key];
    if (v === null || v === undefined || !Number.isFinite(v)) continue; // a diverged evaluation
    x.push(X(e.step));
    y.push(v);
    steps.push(e.step);
  }
  return withSteps(
    {
      type: "scatter",
      mode: "lines+markers",
      name,
      x,
      y,
      line: { color, width: 1.5 },
      marker: { color, size: 6 },
      hovertemplate: `${name}<br>step ${stepOf()}<br>%{y:.4f}<extra></extra>`,
    },
    steps,
  );
}

function lossTraces(X) {
  return [
    lineTrace("minibatch loss", state.losses.points(), X, COLORS.raw, 1),
    lineTrace(`smoothed (${state.view.smoothing.toFixed(3)})`, state.losses.smoothed(), X, COLORS.smooth, 2),
    evalTrace("train loss", "train_loss", COLORS.train, X),
    evalTrace("dev loss", "dev_loss", COLORS.dev, X),
  ];
}

function changeShapes(X) {
  return state.changes.slice(-MAX_CHANGE_MARKS).map((c) => ({
    type: "line",
    xref: "x",
    yref: "paper",
    x0: X(c.step),
    x1: X(c.step),
    y0: 0,
    y1: 1,
    line: { color: COLORS.change, width: 1, dash: "dot" },
  }));
}

function changeLabels(X) {
  return state.changes.slice(-MAX_CHANGE_LABELS).map((c) => ({
    xref: "x",
    yref: "paper",
    x: X(c.step),
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
}

function lossLayout(X) {
  const runId = state.run ? state.run.id : "none";
  const log = state.view.logScale;
  return baseLayout({
    datarevision: ++revision,
    uirevision: runId, // keep the user's y zoom across redraws of one run
    margin: { l: 58, r: 16, t: 36, b: 40 },
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" },
    xaxis: xAxisLayout(X),
    yaxis: axis({
      title: { text: log ? "loss (log scale)" : "loss" },
      type: log ? "log" : "linear",
      uirevision: `${runId}-${log}`, // switching scales resets the y zoom
      ...(log ? { tickmode: "array", tickvals: LOG_TICKS } : {}),
    }),
    shapes: changeShapes(X),
    annotations: changeLabels(X),
  });
}

export function drawChart() {
  const X = xMapper();
  react("chart", lossTraces(X), lossLayout(X))?.then(hookZoom);
}

/** The rate the schedule gives step s (backend/schedule.py). */
export function scheduledLr(h, s) {
  const sch = h.schedule || { kind: "constant" };
  if (sch.kind === "step") return s >= sch.at ? h.lr * sch.factor : h.lr;
  if (sch.kind === "cosine") {
    const progress = Math.min(s / h.max_steps, 1);
    return sch.min_lr + (h.lr - sch.min_lr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
  return h.lr;
}

/** The rates the schedule has in store from the current step to the right edge of the chart. */
function plannedTrace(X, range) {
  const h = state.hparams;
  if (!h || state.view.xAxis === "time") return null; // time ahead is not known
  const from = state.step;
  // in steps, up to the right edge; in examples (whose edge is no step), a young run's first 1,000
  const edge = state.view.xAxis === "step" ? Math.floor(range[1]) : MIN_X_RANGE;
  const to = Math.min(h.max_steps, edge);
  if (to <= from) return null;
  const x = [], y = [], steps = [];
  const n = 60;
  for (let i = 0; i <= n; i++) {
    const s = Math.round(from + ((to - from) * i) / n);
    if (steps.length && s === steps[steps.length - 1]) continue;
    steps.push(s);
    x.push(X(s));
    y.push(scheduledLr(h, s));
  }
  if (h.schedule && h.schedule.kind === "step" && h.schedule.at > from && h.schedule.at <= to) {
    // the drop exactly where it happens
    const i = steps.findIndex((s) => s >= h.schedule.at);
    steps.splice(i, 0, h.schedule.at - 1);
    x.splice(i, 0, X(h.schedule.at - 1));
    y.splice(i, 0, h.lr);
  }
  return withSteps(
    {
      type: "scatter",
      mode: "lines",
      name: "planned",
      x,
      y,
      line: { color: COLORS.lr, width: 1.2, dash: "dot" },
      hovertemplate: `planned lr %{y:.4g}<br>step ${stepOf()}<extra></extra>`,
    },
    steps,
  );
}

export function drawLrChart() {
  const X = xMapper();
  const points = compressRuns(state.lrs.points());
  const trace = lineTrace("learning rate", points, X, COLORS.lr, 1.8);
  trace.line.shape = "hv"; // a rate holds until the next step's
  trace.hovertemplate = `lr %{y:.4g}<br>step ${stepOf()}<extra></extra>`;
  const traces = [trace];
  const planned = plannedTrace(X, xRange(X));
  if (planned) traces.push(planned);
  const runId = state.run ? state.run.id : "none";
  react("lr-chart", traces, baseLayout({
    datarevision: ++revision,
    uirevision: runId,
    margin: { l: 58, r: 16, t: 8, b: 36 },
    xaxis: xAxisLayout(X),
    yaxis: axis({
      title: { text: "lr (log)" },
      ...logAxis(logRange([...trace.y, ...(planned ? planned.y : [])], 0.12, 0.8), fmt.lr),
    }),
    shapes: changeShapes(X),
  }))?.then(hookZoom);
}

/**
 * A zoom or pan on either chart moves both (the x range only). A zoom or pan reports
 * "xaxis.range[0]" and "xaxis.range[1]"; a reset (double click, the mode bar's reset button)
 * reports "xaxis.autorange", or "xaxis.range" as the range plotly first drew (a young run's):
 * either way, back to the whole run.
 */
function followZoom(event) {
  let range;
  if ("xaxis.range[0]" in event && "xaxis.range[1]" in event) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
  else if (event["xaxis.autorange"] || Array.isArray(event["xaxis.range"])) range = null;
  else return;
  const old = state.view.xRange;
  if (range === null ? old === null : old && old[0] === range[0] && old[1] === range[1]) return;
  state.view.xRange = range;
  invalidate({ chart: true, urgent: true });
}

/** After a draw: hook the zoom handler once plotly has made the div a plot. */
function hookZoom() {
  for (const id of ["chart", "lr-chart"]) {
    const el = document.getElementById(id);
    if (el && el.on && !el.dataset.zoomHooked) {
      el.on("plotly_relayout", followZoom);
      el.dataset.zoomHooked = "1";
    }
  }
}
