// The compare chart: every selected run on one plot, one colour per run. Each run's smoothed
// step loss (named by the run: the legend), its raw minibatch losses as a faint band (min/max
// points), its dev-loss evaluations (dashed, markers when few), and a dotted line in its colour
// at each change of its hyperparameters. Hovering the smoothed line shows the run's learning
// rate and batch size at that step. The axes, the thinning, the zoom, the legend and the skip of
// redraws that would move nothing are the single view's too (chartkit/).

import { extent, LOSS_MARGIN, LOSS_TICKS, lossAxis, plotWidth as widthOf, vline, xAxis } from "../chartkit/axes.js";
import { legendButton } from "../chartkit/legend.js";
import { LastDraw } from "../chartkit/redraws.js";
import { markersIfFew, thinLoss } from "../chartkit/thin.js";
import { hookRelayout, relayoutRange, sameRange } from "../chartkit/zoom.js";
import { baseLayout, react } from "../plots.js";
import { invalidate } from "../render.js";
import { state } from "../state.js";
import { hookHover, passMouse } from "./hover.js";
import { pointsPerRun } from "./prefetch.js";
import { firstStep, hparamsAt, points, smoothed, stepOf, xMapper } from "./series.js";

// 20 colours that read on the dark background, each at least 30 apart (CIE76 in Lab) from every
// other: chosen greedily, the farthest from those already taken. Past 20 runs the colours come
// round again with another dash (RUN_DASHES).
export const RUN_COLORS = [
  "#5b9bff", "#00ff00", "#ff3300", "#ebebad", "#ff00ff", "#f471a5", "#ffff00", "#33ebff", "#13ec95", "#ffad33",
  "#9466ff", "#8fcc33", "#ff8566", "#ff00b2", "#eb99ff", "#adc6eb", "#ebb4ad", "#ff335c", "#99ffd6", "#f4f471",
];
export const RUN_DASHES = ["solid", "dot", "dashdot", "longdash"];
const MARKERS_MAX = 40; // evaluation markers only when this few are in view
const LOG_TICKS = LOSS_TICKS.filter((v) => v >= 0.5 && v <= 50); // the compare chart labels losses from 0.5 to 50

const indexOf = (id) => Math.max(0, state.compare.ids.indexOf(id));
export const colorOf = (id) => RUN_COLORS[indexOf(id) % RUN_COLORS.length];
export const dashOf = (id) => RUN_DASHES[Math.floor(indexOf(id) / RUN_COLORS.length) % RUN_DASHES.length];
const faint = (hex, a) => `rgba(${parseInt(hex.slice(1, 3), 16)}, ${parseInt(hex.slice(3, 5), 16)}, ${parseInt(hex.slice(5, 7), 16)}, ${a})`;
export const nameOf = (id) => (state.compare.live[id] || state.compare.runs[id] || { name: id }).name;

/** Whether run `id` trains (it is drawn on the live plot, redrawn as it goes). */
export function isLive(id) {
  const c = state.compare;
  const status = (c.live[id] || c.runs[id] || {}).status;
  return status === "running" || status === "queued";
}

let xHi = null; // the right end while nothing is zoomed: {key, still, hi}

/** The x range shown: the user's zoom, else every run from 0 to its last step. While a run that
 *  trains is the longest, the range keeps a quarter ahead of it, so that it (and the plot of the
 *  runs that do not train) moves only now and then. */
export function xRange() {
  const c = state.compare;
  if (c.view.xRange) return c.view.xRange;
  let still = 0, live = 0;
  for (const id of c.ids) {
    const x = xMapper(id, c.view.xAxis)(Math.max(stepOf(id), 1));
    if (isLive(id)) live = Math.max(live, x);
    else still = Math.max(still, x);
  }
  const key = JSON.stringify([c.ids, c.ids.map(isLive), c.view.xAxis]);
  if (!xHi || xHi.key !== key || xHi.still !== still || live > xHi.hi) {
    xHi = { key, still, hi: live > still ? 1.25 * live : still };
  }
  const hi = xHi.hi > 0 ? xHi.hi : 1;
  return [-0.015 * hi, 1.015 * hi];
}

function plotWidth() {
  return widthOf("compare-chart", LOSS_MARGIN, 100);
}

/** One run's traces and change marks. */
function runTraces(id, X, range, width) {
  const c = state.compare;
  const color = colorOf(id);
  const name = nameOf(id);
  const p = points(id);
  const xs = p.step.map(X);
  // the raw band: a minimum and a maximum per bucket, fewer buckets the more runs (what a redraw
  // costs grows with the points: 20 runs at 2 px were ~27,000 points)
  const n = pointsPerRun(width, c.ids.length) / 2;
  // the EMA, then its mean per bucket: where the points are groups' minima and maxima (a long run
  // seen whole), the EMA barely smooths across them and the mean gives the middle of the band
  const sm = smoothed(p, c.view.smoothing);
  const { raw, smooth } = thinLoss({ x: xs, y: p.loss }, { x: sm.x.map(X), y: sm.y }, range[0], range[1], n);
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
      line: { color, width: 2, dash: dashOf(id) }, meta: id,
      hovertemplate: `${escapeHtml(name)}<br>step %{customdata[0]:,}<br>loss %{y:.4f} (smoothed)` +
        "<br>lr %{customdata[1]} · batch %{customdata[2]}<extra></extra>",
    },
    {
      type: "scatter", mode: markersIfFew(ex.length, MARKERS_MAX), name: `${name} (dev)`,
      legendgroup: group, showlegend: false, x: ex, y: ey, customdata: es,
      line: { color, width: 1.5, dash: "dash" }, marker: { color, size: 6, symbol: "diamond" },
      hovertemplate: `${escapeHtml(name)}<br>dev loss %{y:.4f}<br>step %{customdata:,}<extra></extra>`,
    },
  ];
  if (hidden) for (const t of traces) t.visible = false;
  const shapes = [];
  if (!hidden) {
    const changes = c.series[id] ? c.series[id].changes : [];
    const run = c.runs[id];
    const marks = new Set(changes.slice(1).map((ch) => ch.step));
    // where it left its parent (its own settings, if any, are a change at that step: one mark)
    if (run && run.parent) marks.add(run.parent.step);
    for (const step of marks) {
      const x = X(step);
      if (x < range[0] || x > range[1]) continue;
      shapes.push(vline(x, { color: faint(color, 0.7), width: 1, dash: "dot" }));
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
  return pointsPerRun(plotWidth(), state.compare.ids.length);
}

/** The y range both plots share (in axis units: log10 on a log axis), padded by 5%. */
function yRangeOf(ext, log) {
  if (!ext) return log ? [0, 1] : [0, 1];
  let [lo, hi] = log ? ext.map(Math.log10) : ext;
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = 0.05 * (hi - lo);
  return [lo - pad, hi + pad];
}

const within = (inner, outer) => inner[0] >= outer[0] && inner[1] <= outer[1];

// What each plot last drew: the plot behind its key, the live plot's LastDraw (its tails: each
// run's last step); the y range they share and the extent of the runs that do not train (both
// plots take the y range from the data, the user's zoom aside).
let stillDrawn = null;
const liveDrawn = new LastDraw();
let shared = { y: null, key: "", stillExtent: null };

/** What the plot of the runs that do not train draws of run `id`: of one that trains, only
 *  that it does (its evaluations and points come as it goes, drawn by the live plot). */
function runState(id) {
  const c = state.compare;
  const s = c.series[id];
  if (isLive(id)) return [id, nameOf(id), s && s.generation, true];
  return [id, nameOf(id), s && s.generation, s && s.evals.length, c.runs[id] && c.runs[id].status];
}

/** Whether the live points since the last draw would move the lines by less than 2 px. */
function liveUnchanged(key, ids, range, width) {
  const c = state.compare;
  const tails = Object.fromEntries(ids.map((id) => [id, stepOf(id)]));
  const pxPerX = width / (range[1] - range[0]);
  return liveDrawn.unchanged(key, tails, (was) =>
    ids.every((id) => {
      const X = xMapper(id, c.view.xAxis);
      return (X(tails[id]) - X(was[id] ?? 0)) * pxPerX < 2;
    }),
  );
}

const MEASURES_KEPT = 2000; // performance entries "compare-draw" (bench/compare.py reads them)

function build(ids, range, width) {
  const c = state.compare;
  const traces = [], shapes = [];
  for (const id of ids) {
    if (!c.series[id] || !c.series[id].loaded) continue;
    const r = runTraces(id, xMapper(id, c.view.xAxis), range, width);
    traces.push(...r.traces);
    shapes.push(...r.shapes);
  }
  return { traces, shapes };
}

function layout(range, yRange, shapes) {
  const c = state.compare;
  return baseLayout({
    datarevision: ++revision,
    uirevision: c.ids.join(","),
    margin: LOSS_MARGIN,
    hovermode: "closest",
    xaxis: xAxis(c.view.xAxis, range),
    yaxis: lossAxis(c.view.logScale, { range: yRange, autorange: false }, LOG_TICKS),
    shapes,
  });
}

function measure(t0, traces) {
  // each redraw's cost, traces built and plotly's synchronous work: what a frame spends on it
  if (performance.getEntriesByName("compare-draw").length >= MEASURES_KEPT) performance.clearMeasures("compare-draw");
  performance.measure("compare-draw", { start: t0, detail: { traces } });
}

/** The runs that do not train, on #compare-chart (it takes the zoom and the hover): drawn only
 *  when one of them, the view, or the shared y range changes. */
export function drawCompare() {
  const t0 = performance.now();
  const c = state.compare;
  if (c.opening) return false; // the first draw waits for every run's points (one draw, not twenty)
  const range = xRange();
  const width = plotWidth();
  const log = c.view.logScale;
  const stillIds = c.ids.filter((id) => !isLive(id));
  const key = JSON.stringify([c.ids.map(runState), c.view, range, width]);
  let built = null;
  if (shared.key !== key) {
    built = build(stillIds, range, width);
    shared = { key, stillExtent: extent(built.traces, log), y: null };
  }
  if (!shared.y) {
    // the y range from every run in view, those that train too (their plot follows it)
    const liveExt = extent(build(c.ids.filter(isLive), range, width).traces, log);
    const ext = [shared.stillExtent, liveExt].filter(Boolean);
    shared.y = yRangeOf(ext.length ? [Math.min(...ext.map((e) => e[0])), Math.max(...ext.map((e) => e[1]))] : null, log);
  }
  const yRange = c.view.yRange || shared.y;
  const drawnKey = JSON.stringify([key, yRange]);
  if (stillDrawn === drawnKey) return false;
  const first = stillDrawn === null;
  stillDrawn = drawnKey;
  built ||= build(stillIds, range, width);
  react("compare-chart", built.traces, layout(range, yRange, built.shapes))?.then(hookZoom);
  liveDrawn.forget();
  measure(t0, built.traces.length);
  // the live plot follows at once: in this frame the first time (the first picture is every run,
  // not the stored ones a frame before the others), else in the next (one plot per frame)
  if (first) drawLive();
  else invalidate({ charts: ["compareLive"], urgent: true });
  return true;
}

/** The runs that train, on #compare-live over it (same axes, transparent, no mouse): redrawn as
 *  they go, at the cost of their traces alone. */
export function drawLive() {
  const t0 = performance.now();
  const c = state.compare;
  if (c.opening || stillDrawn === null) return false;
  const range = xRange();
  const width = plotWidth();
  const ids = c.ids.filter(isLive);
  const key = JSON.stringify([c.ids.map(runState), c.view, range, width]);
  if (key !== shared.key) {
    // the runs that do not train (or the view) changed: that plot first, this one after it
    invalidate({ charts: ["compare"], urgent: true });
    return false;
  }
  const yRange = c.view.yRange || shared.y;
  if (liveUnchanged(JSON.stringify([key, yRange]), ids, range, width)) return false;
  const { traces, shapes } = build(ids, range, width);
  const ext = extent(traces, c.view.logScale);
  if (!c.view.yRange && ext && !within(yRangeOf(ext, c.view.logScale), shared.y)) {
    shared.y = null; // a live run left the range: both plots take a new one
    invalidate({ charts: ["compare"], urgent: true });
  }
  const lay = layout(range, yRange, shapes);
  // the axes, their ticks and grid are drawn once, by the plot behind: here only the ranges
  for (const a of [lay.xaxis, lay.yaxis]) Object.assign(a, { visible: false, title: { text: "" } });
  react("compare-live", traces, lay, { displayModeBar: false, responsive: true })?.then(() => hookHover("compare-live"));
  measure(t0, traces.length);
  for (const resolve of nextLive.splice(0)) resolve();
  return true;
}

const nextLive = [];
/** Resolves once the live plot has next drawn: the plot behind it has drawn first. */
export function nextLiveDraw() {
  return new Promise((resolve) => nextLive.push(resolve));
}

/** A zoom or pan: the new x range (its points are asked for) and y range; a reset: every run whole. */
function onRelayout(event) {
  const c = state.compare;
  const x = relayoutRange(event, "xaxis"), y = relayoutRange(event, "yaxis");
  if (x === undefined && y === undefined) return;
  let moved = false;
  if (y !== undefined && !sameRange(y, c.view.yRange ?? null)) {
    c.view.yRange = y;
    moved = true;
  }
  if (x !== undefined && !sameRange(x, c.view.xRange)) {
    c.view.xRange = x;
    zoomed();
    moved = true;
  }
  if (moved) invalidate({ charts: ["compare"], urgent: true });
}

let zoomed = () => {};
/** What to do after a zoom (view.js: ask for the points in the new range). */
export function onZoom(f) {
  zoomed = f;
}

function hookZoom() {
  const el = hookRelayout("compare-chart", onRelayout);
  if (el) passMouse(el);
  hookHover("compare-chart");
}

/** The legend: a button per run, in its colour, that shows or hides it. */
export function renderLegend() {
  const box = document.getElementById("compare-legend");
  const c = state.compare;
  const key = JSON.stringify([c.ids, c.ids.map(nameOf), c.view.hidden]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(
    ...c.ids.map((id) =>
      legendButton({
        label: nameOf(id),
        color: colorOf(id),
        data: { run: id, dash: dashOf(id) },
        shown: !c.view.hidden[id],
        toggle() {
          c.view.hidden[id] = !c.view.hidden[id];
          invalidate({ charts: ["compare"], urgent: true });
        },
      }),
    ),
  );
}
