// The Inside panel's figures over steps: update:data per parameter (log10, the lecture's guide at
// -3) and the hidden layer's saturation and dead units, with the run's hyperparameter changes
// marked as on the loss chart (marks.js).

import { bucketMinMax, bucketsAcross } from "../chartkit/thin.js";
import { changeMarks } from "../marks.js";
import { axis, baseLayout, COLORS, react, SMALL_CONFIG } from "../plots.js";
import { state } from "../state.js";
import { hiddenSeries, inside, PARAMS, udSeries } from "./store.js";

export const PARAM_COLORS = { C: "#89ddff", W1: "#7aa2ff", b1: "#c792ea", W2: "#ffb454", b2: "#4fd1a5" };
export const GUIDE = -3; // log10(update / data): "these ratios should be ~1e-3"
const MARGIN = { l: 48, r: 44, t: 8, b: 32 };

/** The steps shown: from the first point to the run's current step. */
function xRange() {
  const x = inside.steps;
  const a = x.length ? x[0] : 0;
  const b = Math.max(x.length ? x[x.length - 1] : 0, state.step, a + 1);
  return [a, b];
}

function width(id) {
  return Math.max(50, (document.getElementById(id)?.clientWidth || 600) - MARGIN.l - MARGIN.r);
}

/** A series as drawn: at most a minimum and a maximum every 3 pixels (spikes kept), so that a
 *  long run's 2,000 points cost a redraw no more than a few hundred do. */
function thinned(id, series, [a, b]) {
  return bucketMinMax(series, a, b, bucketsAcross(width(id), 3, 50));
}

/** The change marks in [a, b]: shapes and the hover triangles at `top`, the y axis's upper end.
 *  The triangles sit on the plot's own y axis, whose range is set, not on the hidden 0..1 axis
 *  the loss chart gives them: an overlaid axis is another subplot for plotly to lay out and draw
 *  at every redraw. */
function marks(id, range, top) {
  const m = changeMarks((s) => s, range, width(id));
  return { shapes: m.shapes, trace: { ...m.trace, yaxis: "y", y: m.trace.x.map(() => top) } };
}

/** An axis of the panel's small plots. Their tick labels never run past the plot: "allow" spares
 *  plotly measuring every label of every redraw to hide those that would (~15% of a redraw). */
export function insideAxis(extra) {
  return axis({ ticklabeloverflow: "allow", ...extra });
}

function stepAxis(range) {
  return insideAxis({ type: "linear", title: { text: "step", standoff: 4 }, range, autorange: false, hoverformat: ",d" });
}

// No plotly legend: it costs about a fifth of each redraw; the page's caption says the colours.
function legendLayout() {
  return { showlegend: false };
}

/** The marks' hover trace, only when there are marks (an empty trace costs a redraw too). */
const withMarks = (traces, m) => (m.trace.x.length ? [...traces, m.trace] : traces);

/** update:data per parameter over steps, the guide line at -3. */
export function drawUpdateData() {
  const range = xRange();
  const traces = PARAMS.map((p) => ({
    type: "scatter",
    mode: inside.steps.length <= 30 ? "lines+markers" : "lines",
    name: p,
    ...thinned("inside-ud", udSeries(p), range),
    line: { color: PARAM_COLORS[p], width: 1.4 },
    marker: { size: 4, color: PARAM_COLORS[p] },
    hovertemplate: `${p}: %{y:.2f} at step %{x:,}<extra></extra>`,
  }));
  const yRange = udRange(traces);
  const m = marks("inside-ud", range, yRange[1]);
  const guide = { type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: GUIDE, y1: GUIDE, line: { color: COLORS.mark, width: 1.2, dash: "dash" } };
  return react(
    "inside-ud",
    withMarks(traces, m),
    baseLayout({
      margin: MARGIN,
      ...legendLayout(),
      xaxis: stepAxis(range),
      yaxis: insideAxis({ title: { text: "log10 update:data", standoff: 4 }, range: yRange, autorange: false }),
      // the guide's label is the figure's caption: an annotation costs a tenth of a redraw
      shapes: [guide, ...m.shapes],
    }),
    SMALL_CONFIG,
  );
}

/** The y range: the points and the guide, at least [-5, -1]. */
function udRange(traces) {
  let lo = -5, hi = -1;
  for (const t of traces) for (const y of t.y) if (Number.isFinite(y)) [lo, hi] = [Math.min(lo, y), Math.max(hi, y)];
  return [Math.floor(lo * 2) / 2 - 0.25, Math.ceil(hi * 2) / 2 + 0.25];
}

/** Saturated share (|tanh| > 0.97, %) and dead units (saturated on every probe row) over steps. */
export function drawSaturation() {
  const range = xRange();
  const sat = thinned("inside-sat", hiddenSeries("saturated"), range);
  const dead = thinned("inside-sat", hiddenSeries("dead"), range);
  const units = inside.point?.hidden?.units;
  const satRange = [0, Math.max(10, ...sat.y.filter(Number.isFinite).map((v) => 100 * v)) * 1.05];
  const m = marks("inside-sat", range, satRange[1]);
  const few = inside.steps.length <= 30 ? "lines+markers" : "lines";
  return react(
    "inside-sat",
    withMarks([
      { type: "scatter", mode: few, name: "saturated %", x: sat.x, y: sat.y.map((v) => (v === null ? null : 100 * v)), line: { color: COLORS.train, width: 1.4 }, marker: { size: 4 }, hovertemplate: "saturated %{y:.1f}% at step %{x:,}<extra></extra>" },
      { type: "scatter", mode: few, name: "dead units", x: dead.x, y: dead.y, yaxis: "y2", line: { color: "#ff6b7a", width: 1.2, dash: "dot" }, marker: { size: 4 }, hovertemplate: `%{y} dead of ${units ?? "?"} units at step %{x:,}<extra></extra>` },
    ], m),
    baseLayout({
      margin: MARGIN,
      ...legendLayout(),
      xaxis: stepAxis(range),
      yaxis: insideAxis({ title: { text: "saturated %", standoff: 4 }, range: satRange, autorange: false }),
      yaxis2: insideAxis({ overlaying: "y", side: "right", title: { text: "dead", standoff: 2 }, rangemode: "tozero", showgrid: false }),
      shapes: m.shapes,
    }),
    SMALL_CONFIG,
  );
}

/** What the steps charts show, as a key: they redraw when it changed (a new point, another
 *  change mark), not with every steps message. */
export function stepsKey() {
  const last = state.changes[state.changes.length - 1];
  return `${inside.version.steps}|${state.changes.length}|${last ? `${last.step}:${last.label}` : ""}`;
}
