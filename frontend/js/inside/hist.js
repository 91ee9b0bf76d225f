// The Inside panel's figures of the latest point: the hidden layer's tanh histogram (the one
// before it faint), the gradients' log10|g| histograms per parameter, and the direction of a
// minibatch gradient against the full one by batch size.

import * as fmt from "../format.js";
import { baseLayout, COLORS, react, SMALL_CONFIG } from "../plots.js";
import { insideAxis, PARAM_COLORS } from "./steps.js";
import { inside, PARAMS } from "./store.js";

const MARGIN = { l: 48, r: 16, t: 8, b: 36 };
const DEFAULT_RANGES = { tanh: [-1, 1], preact: [-5, 5], log10_grad: [-10, 0] };

/** The centres of `counts.length` equal bins on [lo, hi]. */
export function centres(counts, [lo, hi]) {
  const w = (hi - lo) / counts.length;
  return counts.map((_, i) => lo + (i + 0.5) * w);
}

const rangeOf = (point, key) => point?.ranges?.[key] ?? DEFAULT_RANGES[key];
const share = (counts) => {
  const n = counts.reduce((a, b) => a + b, 0) || 1;
  return counts.map((c) => c / n);
};

function histTrace(name, counts, range, color, faint = false) {
  return {
    type: "scatter",
    mode: "lines",
    name,
    x: centres(counts, range),
    y: share(counts),
    line: { color, width: faint ? 1 : 1.6, shape: "hvh" },
    fill: "tozeroy",
    fillcolor: faint ? "rgba(138, 148, 168, 0.10)" : "rgba(122, 162, 255, 0.25)",
    opacity: faint ? 0.6 : 1,
    hovertemplate: `${name}: %{y:.1%} near %{x:.2f}<extra></extra>`,
  };
}

const empty = (text) => [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text, font: { color: COLORS.muted } }];

/** The tanh outputs' histogram on the probe (share of all unit x row values per bin). */
export function drawTanh() {
  const p = inside.latest, q = inside.previous;
  const traces = [];
  if (q) traces.push(histTrace(`step ${fmt.int(q.step)}`, q.hidden.tanh.hist, rangeOf(q, "tanh"), COLORS.muted, true));
  if (p) traces.push(histTrace(`step ${fmt.int(p.step)}`, p.hidden.tanh.hist, rangeOf(p, "tanh"), COLORS.smooth));
  return react(
    "inside-tanh",
    traces,
    baseLayout({
      margin: MARGIN,
      xaxis: insideAxis({ title: { text: "tanh output", standoff: 4 }, range: [-1, 1], autorange: false }),
      yaxis: insideAxis({ title: { text: "share", standoff: 4 }, tickformat: ".0%", rangemode: "tozero" }),
      shapes: [-0.97, 0.97].map((x) => ({ type: "line", xref: "x", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { color: COLORS.mark, width: 1, dash: "dash" } })),
      annotations: p ? [] : empty("at the first diagnostics"),
    }),
    SMALL_CONFIG,
  );
}

/** log10|gradient| per parameter, the latest point's (share of the parameter's entries). */
export function drawGradHist() {
  const p = inside.latest;
  const traces = p
    ? PARAMS.filter((k) => Array.isArray(p.params?.[k]?.grad_hist)).map((k) => ({
        type: "scatter",
        mode: "lines",
        name: k,
        x: centres(p.params[k].grad_hist, rangeOf(p, "log10_grad")),
        y: share(p.params[k].grad_hist),
        line: { color: PARAM_COLORS[k], width: 1.4, shape: "hvh" },
        hovertemplate: `${k}: %{y:.1%} of entries near 10^%{x:.1f}<extra></extra>`,
      }))
    : [];
  return react(
    "inside-grad",
    traces,
    baseLayout({
      margin: MARGIN,
      xaxis: insideAxis({ title: { text: "log10 |gradient|", standoff: 4 }, range: rangeOf(p, "log10_grad"), autorange: false }),
      yaxis: insideAxis({ title: { text: "share", standoff: 4 }, tickformat: ".0%", rangemode: "tozero" }),
      annotations: p ? [] : empty("at the first diagnostics"),
    }),
    SMALL_CONFIG,
  );
}

/** sqrt(B / (B + B_noise)), the noise scale's prediction of the cosine (backend/core/gradcos.py). */
export function predictedCos(B, bNoise) {
  if (!Number.isFinite(bNoise)) return null;
  return bNoise <= 0 ? 1 : Math.sqrt(B / (B + bNoise));
}

/** cos(minibatch gradient, full gradient) against the batch size: mean, mean ± std as a band,
 *  the noise scale's prediction, the run's batch size marked. */
export function drawGradcos() {
  const g = inside.gradcos;
  const traces = [];
  const shapes = [];
  const annotations = [];
  if (g) {
    const B = g.batch_sizes;
    const clamp = (v) => Math.max(-1, Math.min(1, v));
    const lo = B.map((_, i) => (g.mean[i] === null ? null : clamp(g.mean[i] - (g.std?.[i] ?? 0))));
    const hi = B.map((_, i) => (g.mean[i] === null ? null : clamp(g.mean[i] + (g.std?.[i] ?? 0))));
    traces.push(
      { type: "scatter", mode: "lines", name: "mean − std", x: B, y: lo, line: { width: 0, color: COLORS.smooth }, hoverinfo: "skip", showlegend: false },
      { type: "scatter", mode: "lines", name: "± std", x: B, y: hi, fill: "tonexty", fillcolor: "rgba(122, 162, 255, 0.18)", line: { width: 0, color: COLORS.smooth }, hoverinfo: "skip" },
      { type: "scatter", mode: "lines+markers", name: "measured", x: B, y: g.mean, line: { color: COLORS.smooth, width: 1.8 }, marker: { size: 5 }, hovertemplate: "B %{x:,}: cos %{y:.3f}<extra></extra>" },
    );
    const curve = predictedCurve(g);
    if (curve) traces.push({ type: "scatter", mode: "lines", name: `predicted (B_noise ≈ ${fmt.approx(g.b_noise)})`, ...curve, line: { color: COLORS.train, width: 1.4, dash: "dash" }, hovertemplate: "B %{x:,.0f}: predicted %{y:.3f}<extra></extra>" });
    if (Number.isFinite(g.current)) {
      shapes.push({ type: "line", xref: "x", x0: g.current, x1: g.current, yref: "paper", y0: 0, y1: 1, line: { color: COLORS.mark, width: 1.5 } });
      annotations.push({ xref: "x", x: Math.log10(g.current), yref: "paper", y: 0, yanchor: "bottom", xanchor: "left", xshift: 3, showarrow: false, text: `batch ${fmt.int(g.current)}`, font: { size: 11, color: COLORS.mark } });
    }
  } else {
    annotations.push(...empty("at the next evaluation"));
  }
  return react(
    "inside-gradcos",
    traces,
    baseLayout({
      margin: MARGIN,
      showlegend: traces.length > 0,
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)", font: { size: 11 } },
      xaxis: insideAxis({ type: "log", title: { text: "batch size (log)", standoff: 4 } }),
      yaxis: insideAxis({ title: { text: "cosine to full gradient", standoff: 4 }, range: [0, 1.02], autorange: false }),
      shapes,
      annotations,
    }),
    SMALL_CONFIG,
  );
}

/** The prediction as a smooth curve over the sizes measured (from B_noise), else the server's points. */
function predictedCurve(g) {
  const B = g.batch_sizes;
  if (Number.isFinite(g.b_noise) && B.length) {
    const a = Math.log10(B[0]), b = Math.log10(B[B.length - 1]);
    const x = Array.from({ length: 41 }, (_, i) => 10 ** (a + ((b - a) * i) / 40));
    return { x, y: x.map((v) => predictedCos(v, g.b_noise)) };
  }
  return Array.isArray(g.predicted) && g.predicted.some((v) => v !== null) ? { x: B, y: g.predicted } : null;
}
