// The step-based charts (plotly.js, loaded as a classic script: window.Plotly): the loss chart
// and, under it, the effective learning rate per step. Both share the x axis (step, examples
// seen or training time: xaxis.js) and its range, zoom included. Drawn from the state with
// Plotly.react, which render.js calls a few times a second at most, and only when it changed.
//
// Each trace gets only the points in view, thinned to a few per pixel, and markers only where
// there are few (chartkit/thin.js: what a redraw costs grows with the points drawn).

import { extent, LOSS_MARGIN, lossAxis, plotWidth, xAxis } from "./chartkit/axes.js";
import { legendButton, pressed } from "./chartkit/legend.js";
import { LastDraw } from "./chartkit/redraws.js";
import { bucketMinMax, bucketsAcross, clip, markersIfFew, thinLoss } from "./chartkit/thin.js";
import { hookRelayout, relayoutRange, sameRange } from "./chartkit/zoom.js";
import { ghostKey, ghostTraces } from "./compare/ghost.js";
import { examplesAt } from "./events.js";
import * as fmt from "./format.js";
import { changeMarks, divergenceMarks } from "./marks.js";
import { axis, baseLayout, COLORS, logAxis, logRange, react } from "./plots.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";
import { statusText } from "./statustext.js";
import { stepAt, stepMapper, X_AXES } from "./xaxis.js";

const MIN_X_RANGE = 1000; // steps shown at least, so a young run is not stretched over 0..1
const PX_PER_BUCKET = 2; // a line's points in view: a min and a max every 2 px of the plot's width
const EVAL_BUCKETS = 300; // the evaluations' points in view: at most 2 per bucket
// the top margin: plotly's mode bar (26 px high, 2 px from the top) in it, above the change marks'
// labels that hang from the plot's top edge (it covered those of the latest changes, at the right)
const MODEBAR_ROOM = 32;
const MARKERS_MAX = 60; // markers on the evaluations only when this few are in view (SVG markers are costly)

let revision = 0;

/** step -> x for the chosen axis. */
function xMapper() {
  return stepMapper(state.view.xAxis, state.initialHparams ? examplesAt : null, state.times);
}

/** The steps in view, [first, last], for the x range shown. */
function stepsInView(X, range) {
  const at = (x) => stepAt(state.view.xAxis, X, x, state.step);
  return [at(range[0]), Math.ceil(at(range[1]))];
}

/**
 * The x range both charts show: the user's zoom; else, following, the last `follow` steps; else
 * the whole run (at least MIN_X_RANGE steps).
 */
function xRange(X) {
  if (state.view.xRange) return state.view.xRange;
  const follow = state.view.follow;
  if (follow && state.step > follow) {
    const lo = X(state.step - follow), hi = X(state.step);
    return [lo, hi + 0.015 * (hi - lo)];
  }
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
  // an SVG path: a few thousand points cost a few milliseconds
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

function evalTrace(name, key, color, X, [s0, s1]) {
  const points = bucketMinMax(state.evals.points(key, s0, s1), s0, s1, EVAL_BUCKETS);
  return withSteps(
    {
      type: "scatter",
      mode: markersIfFew(points.x.length, MARKERS_MAX),
      name,
      x: points.x.map(X),
      y: points.y,
      line: { color, width: 1.5 },
      marker: { color, size: 6 },
      hovertemplate: `${name}<br>step ${stepOf()}<br>%{y:.4f}<extra></extra>`,
    },
    points.x,
  );
}

/** How many buckets a line gets across the plot `id`: a few per pixel is all a screen shows. */
function buckets(id) {
  return bucketsAcross(document.getElementById(id)?.clientWidth || 1000, PX_PER_BUCKET, 100);
}

/** The minibatch losses and their smoothed curve in view: every recent step when the view lies
 *  in them (the "follow" views), else the run's buckets; thinned to buckets() either way. */
function lossPoints([s0, s1]) {
  const L = state.losses;
  const n = buckets("chart");
  const recent = s0 >= L.recent.first;
  const raw = recent ? L.recent.slice(s0, s1, 0) : clip(L.points(), s0, s1);
  const smooth = recent ? L.recentSmoothed(s0, s1) : clip(L.smoothed(), s0, s1);
  return thinLoss(raw, smooth, s0, s1, n);
}

// The loss chart's traces, as the legend (chartkit/legend.js) names them.
const LEGEND = [
  { key: "raw", name: "minibatch loss", color: COLORS.smooth, faint: true },
  { key: "smooth", name: "smoothed", color: COLORS.smooth },
  { key: "train", name: "train loss", color: COLORS.train },
  { key: "dev", name: "dev loss", color: COLORS.dev },
];

function lossTraces(X, steps) {
  const { raw, smooth } = lossPoints(steps);
  const traces = [
    lineTrace("minibatch loss", raw, X, COLORS.raw, 1),
    lineTrace(`smoothed (${state.view.smoothing.toFixed(3)})`, smooth, X, COLORS.smooth, 2),
    evalTrace("train loss", "train", COLORS.train, X, steps),
    evalTrace("dev loss", "dev", COLORS.dev, X, steps),
  ];
  LEGEND.forEach(({ key }, i) => {
    if (state.view.hidden[key]) traces[i].visible = false;
  });
  return traces;
}

/** The legend: a button per trace that shows or hides it. */
export function initLegend() {
  const box = document.getElementById("chart-legend");
  box.replaceChildren(
    ...LEGEND.map(({ key, name, color, faint }) =>
      legendButton({
        label: name,
        color,
        faint,
        data: { trace: key },
        toggle() {
          state.view.hidden[key] = !state.view.hidden[key];
          invalidate({ charts: ["loss"], urgent: true });
        },
      }),
    ),
  );
}

export function renderLegend() {
  for (const b of document.querySelectorAll("#chart-legend button")) pressed(b, !state.view.hidden[b.dataset.trace]);
}

const LR_MARGIN = { l: 58, r: 16, t: 8, b: 36 };

/**
 * A y range when the losses in view barely differ (a run not started yet: its first evaluation,
 * train 26.08 and dev 26.14): plotly would stretch them over the whole height, with no tick
 * between them. Wide enough for ticks, then; else null (plotly fits the points).
 */
function narrowYRange(traces, log) {
  const ext = extent(traces, log);
  if (!ext) return null;
  const [lo, hi] = ext;
  if (log) return hi / lo < 1.6 ? [Math.log10(lo) - 0.15, Math.log10(hi) + 0.15] : null; // about x0.7 to x1.4
  const pad = Math.max(0.1 * Math.abs(hi), 0.05);
  return hi - lo < pad ? [lo - pad, hi + pad] : null;
}

/**
 * With no loss to show yet (a queued run, one not evaluated yet), plotly's empty log axis runs
 * 0.1 to 1000 with a crowd of ticks: the axis goes bare instead, and the chart says why it is
 * empty (the status line's text for a queued run).
 */
function emptyLayout(traces, log) {
  if (extent(traces, log)) return null;
  const text = state.status === "queued" ? statusText(state).text : "No losses yet: they appear with the first steps.";
  return {
    y: { range: log ? [0, 1] : [0, 10], autorange: false, showticklabels: false, showgrid: false, zeroline: false },
    note: { text, name: "empty", xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: { size: 14, color: COLORS.muted } },
  };
}

function lossLayout(X, range, marks, traces) {
  const runId = state.run ? state.run.id : "none";
  const log = state.view.logScale;
  const empty = emptyLayout(traces, log);
  const y = empty ? null : narrowYRange(traces, log);
  return baseLayout({
    datarevision: ++revision,
    uirevision: runId, // keep the user's y zoom across redraws of one run
    margin: { ...LOSS_MARGIN, t: MODEBAR_ROOM }, // the mode bar above the plot, off the change labels
    xaxis: xAxis(state.view.xAxis, range),
    yaxis: lossAxis(log, {
      uirevision: `${runId}-${log}`, // switching scales resets the y zoom
      ...(empty ? empty.y : y ? { range: y, autorange: false } : { autorange: true }),
    }),
    yaxis2: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true }, // the marks' hover triangles
    shapes: marks.shapes,
    annotations: empty ? [...marks.annotations, empty.note] : marks.annotations,
  });
}

// What each plot last drew: a redraw that would move nothing by a pixel is skipped.
const drawn = { chart: new LastDraw(), "lr-chart": new LastDraw() };

/** Everything a plot shows but the steps streaming in at its right edge. */
function viewKey(id) {
  const v = state.view;
  return JSON.stringify([
    state.run && state.run.id, state.status, state.run && state.run.queue_position, state.changes.length, state.divergences.length, state.hparams,
    v.xAxis, v.xRange, v.follow, v.smoothing,
    v.logScale, v.hidden, document.getElementById(id)?.clientWidth, ghostKey(),
  ]);
}

/**
 * Whether plot `id`, showing steps [s0, s1], would look the same as last time but for new steps
 * (and evaluations) at its right edge narrower than `px` pixels, drawn a moment ago.
 */
function unchanged(id, [s0, s1], px) {
  const stepsPerPx = (s1 - s0) / (buckets(id) * PX_PER_BUCKET);
  return drawn[id].unchanged(viewKey(id), state.step, (step) => state.step - step < px * stepsPerPx);
}

/** Returns false when nothing visible changed and it drew nothing (render.js asks again later). */
export function drawChart() {
  const X = xMapper();
  const range = xRange(X);
  const steps = stepsInView(X, range);
  if (unchanged("chart", steps, 2)) return false;
  const marks = changeMarks(X, range, plotWidth("chart", LOSS_MARGIN));
  const trouble = divergenceMarks(X, range);
  const losses = lossTraces(X, steps);
  const ghost = ghostTraces(state.view.xAxis, range, plotWidth("chart", LOSS_MARGIN)); // behind the run
  const traces = [...ghost, ...losses, marks.trace, ...trouble.traces];
  const layout = lossLayout(X, range, { ...marks, shapes: [...marks.shapes, ...trouble.shapes] }, losses);
  react("chart", traces, layout)?.then(hookZoom);
  return true;
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
  const range = xRange(X);
  const [s0, s1] = stepsInView(X, range);
  if (unchanged("lr-chart", [s0, s1], 4)) return false; // a line that grows: a few pixels at a time
  const points = compressRuns(bucketMinMax(clip(state.lrs.points(), s0, s1), s0, s1, buckets("lr-chart")));
  const trace = lineTrace("learning rate", points, X, COLORS.lr, 1.8);
  trace.line.shape = "hv"; // a rate holds until the next step's
  trace.hovertemplate = `lr %{y:.4g}<br>step ${stepOf()}<extra></extra>`;
  const traces = [trace];
  const planned = plannedTrace(X, range);
  if (planned) traces.push(planned);
  const runId = state.run ? state.run.id : "none";
  react("lr-chart", traces, baseLayout({
    datarevision: ++revision,
    uirevision: runId,
    margin: LR_MARGIN,
    xaxis: xAxis(state.view.xAxis, range),
    yaxis: axis({
      title: { text: "lr (log)" },
      ...logAxis(logRange([...trace.y, ...(planned ? planned.y : [])], 0.12, 0.8), fmt.lr),
    }),
    shapes: [...changeMarks(X, range, plotWidth("lr-chart", LR_MARGIN)).shapes, ...divergenceMarks(X, range).shapes],
  }))?.then(hookZoom);
  return true;
}

/**
 * A zoom or pan on either chart moves both (the x range only). A zoom or pan reports
 * "xaxis.range[0]" and "xaxis.range[1]"; a reset (double click, the mode bar's reset button)
 * reports "xaxis.autorange", or "xaxis.range" as the range plotly first drew (a young run's):
 * either way, back to the whole run.
 */
function followZoom(event) {
  const range = relayoutRange(event, "xaxis", { wholeIsReset: true });
  if (range === undefined || sameRange(range, state.view.xRange)) return;
  state.view.xRange = range;
  invalidate({ chart: true, urgent: true });
}

/** After a draw: hook the zoom handler once plotly has made the div a plot. */
function hookZoom() {
  for (const id of ["chart", "lr-chart"]) hookRelayout(id, followZoom);
}
