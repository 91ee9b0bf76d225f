// The embedding map: each character's learned embedding in 2-D (raw when n_embd is 2, else the
// first two principal components, oriented like the previous map by the server), as the
// lecture's scatter. Redrawn at each `embeddings` message; the points glide to their new places.

import * as fmt from "./format.js";
import { axis, baseLayout, COLORS, react, SMALL_CONFIG } from "./plots.js";
import { state } from "./state.js";

const VOWELS = new Set(["a", "e", "i", "o", "u", "y"]);
const TRANSITION_MS = 350;

let drawn = null; // the map on the plot
let drawnRange = null;

function colorOf(c) {
  if (c === ".") return COLORS.mark;
  return VOWELS.has(c) ? COLORS.dev : COLORS.smooth;
}

/** A square-ish range around the points, kept while they stay well inside it (no jitter). */
function ranges(m) {
  const xs = m.x.filter(Number.isFinite), ys = m.y.filter(Number.isFinite);
  if (!xs.length) return null;
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0, 1e-6) * 1.2;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const want = { x: [cx - span / 2, cx + span / 2], y: [cy - span / 2, cy + span / 2] };
  const r = drawnRange;
  if (r) {
    const inside = x0 >= r.x[0] && x1 <= r.x[1] && y0 >= r.y[0] && y1 <= r.y[1];
    const tooBig = r.x[1] - r.x[0] > 1.6 * span;
    if (inside && !tooBig) return r;
  }
  return want;
}

export function renderEmbeddingInfo() {
  const m = state.embeddings;
  const el = document.getElementById("embedding-info");
  let text = "no evaluation yet";
  if (m && state.run) {
    const d = state.run.config.n_embd;
    text =
      m.method === "raw"
        ? `raw 2-d embeddings at step ${fmt.int(m.step)}`
        : `PCA: the first 2 principal components of the ${d}-d embeddings, at step ${fmt.int(m.step)}`;
  }
  if (el.textContent !== text) el.textContent = text;
  el.dataset.method = m ? m.method : "";
  el.dataset.step = m ? String(m.step) : "";
}

export function drawEmbedding() {
  const m = state.embeddings;
  if (m === drawn && m !== null) return; // nothing new
  const animate = drawn !== null && m !== null && drawn.chars.length === m.chars.length;
  drawn = m;
  const range = m ? ranges(m) : null;
  drawnRange = range;
  const trace = {
    type: "scatter",
    mode: "markers+text",
    name: "characters",
    x: m ? m.x : [],
    y: m ? m.y : [],
    text: m ? m.chars : [],
    textposition: "middle center",
    textfont: { color: "#0f1420", size: 13, family: "ui-monospace, Menlo, Consolas, monospace" },
    marker: { size: 22, color: m ? m.chars.map(colorOf) : [], line: { color: "rgba(15,20,32,0.6)", width: 1 } },
    hovertemplate: "“%{text}”<br>(%{x:.3f}, %{y:.3f})<extra></extra>",
    cliponaxis: false,
  };
  const label = m && m.method === "raw" ? ["embedding dim 0", "embedding dim 1"] : ["PC 1", "PC 2"];
  react(
    "embedding-chart",
    [trace],
    baseLayout({
      datarevision: m ? m.step : 0,
      margin: { l: 44, r: 12, t: 8, b: 36 },
      xaxis: axis({ type: "linear", title: { text: label[0] }, ...(range ? { range: range.x, autorange: false } : {}) }),
      yaxis: axis({
        type: "linear",
        title: { text: label[1] },
        ...(range ? { range: range.y, autorange: false } : {}),
        scaleanchor: "x",
        scaleratio: 1,
      }),
      transition: animate ? { duration: TRANSITION_MS, easing: "cubic-in-out" } : { duration: 0 },
      annotations: m
        ? []
        : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: "at the first evaluation", font: { color: COLORS.muted } }],
    }),
    SMALL_CONFIG,
  );
}
