// The compare chart: every selected run on one plot, one colour per run. Each run's smoothed
// step loss (named by the run: the legend), its raw minibatch losses as a faint band (min/max
// points), its dev-loss evaluations (dashed, markers when few), and a dotted line in its colour
// at each change of its hyperparameters. Hovering the smoothed line shows the run's learning
// rate and batch size at that step. The legend is HTML (as the single view's: plotly's costs a
// fifth of each redraw).

import { bucketMean, bucketMinMax } from "../downsample.js";
import { axis, baseLayout, react } from "../plots.js";
import { invalidate } from "../render.js";
import { state } from "../state.js";
import { X_AXES } from "../xaxis.js";
import { firstStep, hparamsAt, points, smoothed, stepOf, xMapper } from "./series.js";

// 20 colours that read on the dark background, far apart in hue and lightness.
export const RUN_COLORS = [
  "#7aa2ff", "#ffb454", "#4fd1a5", "#ff6b7a", "#c792ea", "#89ddff", "#f78c6c", "#c3e88d", "#ffcb6b", "#f07178",
  "#82aaff", "#b2ccd6", "#ff9cac", "#addb67", "#d6a0ff", "#5fd7ff", "#e6b450", "#95e6cb", "#ff8f40", "#a6accd",
];
// The raw band: a minimum and a maximum every 2 px for a few runs, every 4 px for many (what a
// redraw costs grows with the points: 20 runs at 2 px were ~27,000 points).
const pxPerPoint = () => (state.compare.ids.length <= 4 ? 2 : state.compare.ids.length <= 10 ? 3 : 4);
const STALE_MS = 2000; // a redraw that would move nothing by 2 px is skipped, for at most this long
const MARKERS_MAX = 40; // evaluation markers only when this few are in view
const LOG_TICKS = [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 50];
const MARGIN = { l: 58, r: 16, t: 10, b: 40 };

export const colorOf = (id) => RUN_COLORS[Math.max(0, state.compare.ids.indexOf(id)) % RUN_COLORS.length];
const faint = (hex, a) => `rgba(${parseInt(hex.slice(1, 3), 16)}, ${parseInt(hex.slice(3, 5), 16)}, ${parseInt(hex.slice(5, 7), 16)}, ${a})`;
export const nameOf = (id) => (state.compare.live[id] || state.compare.runs[id] || { name: id }).name;

/** The x range shown: the user's zoom, else every run from 0 to its last step. */
export function xRange() {
  const c = state.compare;
  if (c.view.xRange) return c.view.xRange;
  let hi = 0;
  for (const id of c.ids) hi = Math.max(hi, xMapper(id, c.view.xAxis)(Math.max(stepOf(id), 1)));
  if (!(hi > 0)) hi = 1;
  return [-0.015 * hi, 1.015 * hi];
}

function plotWidth() {
  return Math.max(100, (document.getElementById("compare-chart")?.clientWidth || 1000) - MARGIN.l - MARGIN.r);
}

/** One run's traces and change marks. */
function runTraces(id, X, range, width) {
  const c = state.compare;
  const color = colorOf(id);
  const name = nameOf(id);
  const p = points(id);
  const xs = p.step.map(X);
  const n = Math.round(width / pxPerPoint());
  const raw = bucketMinMax({ x: xs, y: p.loss }, range[0], range[1], n);
  // the EMA, then its mean per bucket: where the points are groups' minima and maxima (a long run
  // seen whole), the EMA barely smooths across them and the mean gives the middle of the band
  const sm = smoothed(p, c.view.smoothing);
  const smooth = bucketMean({ x: sm.x.map(X), y: sm.y }, range[0], range[1], n);
  // the hyperparameters at each smoothed point (bucketMean averages x: take the step nearest it)
  const at = hparamsAt(id);
  const lrOf = new Map(p.step.map((s, i) => [s, p.lr[i]]));
  const stepsOfX = sm.x;
  const xOfSm = stepsOfX.map(X);
  let j = 0;
  const custom = smooth.x.map((x) => {
    while (j < xOfSm.length - 1 && xOfSm[j + 1] <= x) j++;
    const step = stepsOfX[j];
    const h = at(step);
    const lr = lrOf.get(step) ?? (h ? h.lr : null);
    return [step, lr === null ? "—" : Number(lr.toPrecision(4)), h ? h.batch_size : "—"];
  });
  const group = `run-${id}`;
  const evals = c.series[id] ? c.series[id].evals : [];
  const ex = [], ey = [], es = [];
  const from = firstStep(id);
  for (const [step, , dev] of evals) {
    if (dev === null || step < from) continue;
    const x = X(step);
    if (x < range[0] || x > range[1]) continue;
    ex.push(x);
    ey.push(dev);
    es.push(step);
  }
  const hidden = c.view.hidden[id];
  const traces = [
    {
      type: "scatter", mode: "lines", name: `${name} (minibatch)`, legendgroup: group, showlegend: false,
      x: raw.x, y: raw.y, line: { color: faint(color, 0.22), width: 1 }, hoverinfo: "skip",
    },
    {
      type: "scatter", mode: "lines", name, legendgroup: group, x: smooth.x, y: smooth.y, customdata: custom,
      line: { color, width: 2 }, meta: id,
      hovertemplate: `<b>${escapeHtml(name)}</b><br>step %{customdata[0]:,}<br>loss %{y:.4f} (smoothed)` +
        "<br>lr %{customdata[1]} · batch %{customdata[2]}<extra></extra>",
    },
    {
      type: "scatter", mode: ex.length <= MARKERS_MAX ? "lines+markers" : "lines", name: `${name} (dev)`,
      legendgroup: group, showlegend: false, x: ex, y: ey, customdata: es,
      line: { color, width: 1.5, dash: "dash" }, marker: { color, size: 6, symbol: "diamond" },
      hovertemplate: `<b>${escapeHtml(name)}</b><br>dev loss %{y:.4f}<br>step %{customdata:,}<extra></extra>`,
    },
  ];
  if (hidden) for (const t of traces) t.visible = false;
  const shapes = [];
  if (!hidden) {
    const changes = c.series[id] ? c.series[id].changes : [];
    const run = c.runs[id];
    const marks = changes.slice(1).map((ch) => ch.step);
    if (run && run.parent) marks.push(run.parent.step); // where it left its parent (with its own settings)
    for (const step of marks) {
      const x = X(step);
      if (x < range[0] || x > range[1]) continue;
      shapes.push({
        type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
        line: { color: faint(color, 0.7), width: 1, dash: "dot" },
      });
    }
  }
  return { traces, shapes };
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
}

let revision = 0;

/** The points to ask the server for, per run: a minimum and a maximum per bucket on screen. */
export function pointsWanted() {
  return 2 * Math.round(plotWidth() / pxPerPoint());
}

let last = null; // what the chart last drew: {key, tails, at}

/** Everything the chart shows but the live points at the runs' right ends. */
function viewKey(range, width) {
  const c = state.compare;
  return JSON.stringify([
    c.ids, c.ids.map((id) => [nameOf(id), c.series[id] && c.series[id].generation, c.series[id] && c.series[id].evals.length,
      c.runs[id] && c.runs[id].status]),
    c.view, range, width,
  ]);
}

/** Whether the live points since the last draw would move the lines by less than 2 px. */
function unchanged(key, range, width) {
  const c = state.compare;
  const now = performance.now();
  const tails = Object.fromEntries(c.ids.map((id) => [id, stepOf(id)]));
  if (last && last.key === key && now - last.at < STALE_MS) {
    const pxPerX = width / (range[1] - range[0]);
    const still = c.ids.every((id) => {
      const X = xMapper(id, c.view.xAxis);
      return (X(tails[id]) - X(last.tails[id] ?? 0)) * pxPerX < 2;
    });
    if (still) return true;
  }
  last = { key, tails, at: now };
  return false;
}

const MEASURES_KEPT = 2000; // performance entries "compare-draw" (bench/compare.py reads them)

export function drawCompare() {
  const t0 = performance.now();
  const c = state.compare;
  const mode = c.view.xAxis;
  const range = xRange();
  const width = plotWidth();
  if (unchanged(viewKey(range, width), range, width)) return false;
  const traces = [], shapes = [];
  for (const id of c.ids) {
    if (!c.series[id] || !c.series[id].loaded) continue;
    const r = runTraces(id, xMapper(id, mode), range, width);
    traces.push(...r.traces);
    shapes.push(...r.shapes);
  }
  performance.measure("compare-build", { start: t0 }); // the traces alone (bench/compare.py)
  if (performance.getEntriesByName("compare-build").length >= MEASURES_KEPT) performance.clearMeasures("compare-build");
  const spec = X_AXES[mode] || X_AXES.step;
  const log = c.view.logScale;
  react("compare-chart", traces, baseLayout({
    datarevision: ++revision,
    uirevision: c.ids.join(","),
    margin: MARGIN,
    hovermode: "closest",
    xaxis: axis({ type: "linear", title: { text: spec.title }, range, autorange: false, hoverformat: spec.format }),
    yaxis: axis({
      title: { text: log ? "loss (log scale)" : "loss" },
      type: log ? "log" : "linear",
      uirevision: `y-${log}`,
      autorange: true,
      ...(log ? { tickmode: "array", tickvals: LOG_TICKS } : {}),
    }),
    shapes,
  }))?.then(hookZoom);
  // each redraw's cost, traces built and plotly's synchronous work: what a frame spends on it
  if (performance.getEntriesByName("compare-draw").length >= MEASURES_KEPT) performance.clearMeasures("compare-draw");
  performance.measure("compare-draw", { start: t0, detail: { traces: traces.length } });
  return true;
}

/** A zoom or pan: the new x range (its points are asked for); a reset: every run whole. */
function onRelayout(event) {
  let range;
  if ("xaxis.range[0]" in event && "xaxis.range[1]" in event) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
  else if (event["xaxis.autorange"] || Array.isArray(event["xaxis.range"])) range = null;
  else return;
  const old = state.compare.view.xRange;
  if (range === null ? old === null : old && old[0] === range[0] && old[1] === range[1]) return;
  state.compare.view.xRange = range;
  zoomed();
  invalidate({ charts: ["compare"], urgent: true });
}

let zoomed = () => {};
/** What to do after a zoom (view.js: ask for the points in the new range). */
export function onZoom(f) {
  zoomed = f;
}

function hookZoom() {
  const el = document.getElementById("compare-chart");
  if (el && el.on && !el.dataset.zoomHooked) {
    el.on("plotly_relayout", onRelayout);
    el.dataset.zoomHooked = "1";
  }
}

/** The legend: a button per run, in its colour, that shows or hides it. */
export function renderLegend() {
  const box = document.getElementById("compare-legend");
  const c = state.compare;
  const key = JSON.stringify([c.ids, c.ids.map(nameOf), c.view.hidden]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(
    ...c.ids.map((id) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.run = id;
      b.style.setProperty("--swatch", colorOf(id));
      b.textContent = nameOf(id);
      b.setAttribute("aria-pressed", String(!c.view.hidden[id]));
      b.addEventListener("click", () => {
        c.view.hidden[id] = !c.view.hidden[id];
        invalidate({ charts: ["compare"], urgent: true });
      });
      return b;
    }),
  );
}
